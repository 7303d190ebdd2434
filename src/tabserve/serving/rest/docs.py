"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) over ``/openapi.json``, with no external URL.

Both UIs come from the files of one pinned PyPI package, ``fastapi-standalone-docs`` (in the
``serve`` extra): Swagger UI 5.33 (it reads OpenAPI 3.1, which tabserve's document is) and ReDoc
2.5, each with its licence. The package is a FastAPI helper, but only its files are used: it is
located with ``importlib.util.find_spec`` and never imported, so serving imports no FastAPI
(docs/adr/0006). Its ``fastapi`` requirement is in the serve install already (mlflow-skinny
needs it). Swagger UI's online validator badge is turned off (it calls validator.swagger.io).

URLs in the pages are relative (``assets/docs/...``, ``openapi.json``), so the pages work behind
a proxy that serves tabserve under a path prefix. The start-up scripts are files too, not inline
code, so the pages keep a same-origin-only Content-Security-Policy (rest/assets.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from html import escape
from pathlib import Path

from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.rest.assets import asset_route, html_page
from tabserve.serving.state import ServerState

ASSET_PACKAGE = "fastapi-standalone-docs"
ASSET_PREFIX = "/assets/docs"
_OWN = Path(__file__).resolve().parent.parent / "page"
# name served → path inside the package's static/ directory
_PACKAGE_FILES = {
    "swagger-ui-bundle.js": "swagger/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger/swagger-ui.css",
    "swagger-ui.LICENSE.txt": "swagger/LICENSE",
    "redoc.standalone.js": "redoc/redoc.standalone.js",
    "redoc.LICENSE.txt": "redoc/redoc.standalone.js.LICENSE.txt",
}
_OWN_FILES = {"swagger-init.js": "swagger-init.js", "redoc-init.js": "redoc-init.js"}
# ReDoc's sidebar links its logo relative to the page: /redoc/logo-mini.svg.
_REDOC_LOGO = {"logo-mini.svg": "redoc/logo-mini.svg"}

_SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{base}/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/swagger-init.js"></script>
</body></html>"""

_REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>body{{margin:0}}</style>
</head><body><div id="redoc"></div>
<script src="{base}/redoc.standalone.js"></script>
<script src="{base}/redoc-init.js"></script>
</body></html>"""

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API docs unavailable</title></head>
<body><p>The API documentation's files are not installed: <code>pip install
'tabserve[serve]'</code> (it brings <code>{package}</code>). The document itself is at
<a href="openapi.json">openapi.json</a>.</p></body></html>"""


@lru_cache(maxsize=1)
def package_static_dir() -> Path | None:
    """The asset package's ``static/`` directory, found without importing the package."""
    spec = importlib.util.find_spec(ASSET_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / _PACKAGE_FILES["swagger-ui-bundle.js"]).is_file() else None


def asset_files() -> Mapping[str, Path]:
    files = {name: _OWN / rel for name, rel in _OWN_FILES.items()}
    static = package_static_dir()
    if static is not None:
        files.update({name: static / rel for name, rel in _PACKAGE_FILES.items()})
    return files


def redoc_files() -> Mapping[str, Path]:
    static = package_static_dir()
    return {} if static is None else {n: static / rel for n, rel in _REDOC_LOGO.items()}


def routes(state: ServerState) -> list[Route]:
    # Relative to /docs and /redoc, which sit at the root: "assets/docs/x" is /assets/docs/x.
    base = ASSET_PREFIX.lstrip("/")

    def page(template: str) -> Reply:
        if package_static_dir() is None:
            return html_page(_MISSING.format(package=ASSET_PACKAGE), 503)
        plane = state.plane
        title = escape(plane.model_name if plane is not None else "tabserve")
        return html_page(template.format(title=title, base=base))

    async def docs(call: Call) -> Reply:
        return page(_SWAGGER)

    async def redoc(call: Call) -> Reply:
        return page(_REDOC)

    return [
        Route("/docs", docs, in_schema=False),
        Route("/redoc", redoc, in_schema=False),
        asset_route(ASSET_PREFIX, asset_files),
        asset_route("/redoc", redoc_files),
    ]
