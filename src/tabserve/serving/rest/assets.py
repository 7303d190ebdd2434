"""Static files the server's own pages load: a fixed list per page, served from memory.

Nothing on tabserve's pages comes from another host (an air-gapped deployment must show them
whole), so every script and stylesheet is a file of an installed package, listed by name: a
request can only name a file in the list, never a path. Each file is read once, gzip-compressed
once (Swagger UI's bundle is 1.5 MB, 0.45 MB compressed) and answered with an ETag, so a browser
asks again only with ``If-None-Match`` and gets a 304.

The pages themselves carry a Content-Security-Policy that allows only this origin, so a page
that tried to load anything from elsewhere would be stopped by the browser, not only by review.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tabserve.serving.errors import NotFound
from tabserve.serving.http import Call, Reply, Route

# Scripts and styles from this origin only; inline styles are allowed because Swagger UI and
# ReDoc set style attributes; images may be data: URIs (their icons); ReDoc runs a blob: worker.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'"
)
_MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    "": "text/plain; charset=utf-8",  # LICENSE
}


_PAGE_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
)


def html_page(body: str, status: int = 200) -> Reply:
    """One of tabserve's HTML pages: never cached (it shows live state), same-origin only."""
    return Reply(body.encode(), status, b"text/html; charset=utf-8", _PAGE_HEADERS)


@dataclass(frozen=True)
class _Loaded:
    raw: bytes
    gzipped: bytes
    etag: bytes
    media_type: bytes


def asset_route(prefix: str, files: Callable[[], Mapping[str, Path]]) -> Route:
    """``GET {prefix}/{name}`` for the files ``files()`` lists (name → path), read lazily.

    ``files`` is called on the first request, so a page whose asset package is missing still
    starts the server (its page says what to install).
    """
    loaded: dict[str, _Loaded] = {}

    def load(name: str) -> _Loaded:
        item = loaded.get(name)
        if item is None:
            path = files().get(name)
            if path is None or not path.is_file():
                raise NotFound(f"no asset {name!r}")
            raw = path.read_bytes()
            etag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'
            item = _Loaded(
                raw,
                gzip.compress(raw, 6, mtime=0),
                etag,
                _MEDIA.get(path.suffix, "application/octet-stream"),
            )
            loaded[name] = item
        return item

    async def asset(request: Request) -> Response:
        item = load(request.path_params["name"])
        headers = {
            "ETag": item.etag,
            # Revalidated after a day: a new tabserve may pin a new version of the package.
            "Cache-Control": "public, max-age=86400",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == item.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(item.gzipped, media_type=item.media_type, headers=headers)
        return Response(item.raw, media_type=item.media_type, headers=headers)

    return Route(prefix + "/{name}", asset, methods=["GET"])
