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
            etag = b'"' + hashlib.sha256(raw).hexdigest()[:20].encode() + b'"'
            media = _MEDIA.get(path.suffix, "application/octet-stream").encode()
            item = _Loaded(raw, gzip.compress(raw, 6, mtime=0), etag, media)
            loaded[name] = item
        return item

    async def asset(call: Call) -> Reply:
        item = load(call.path_params["name"])
        headers = [
            (b"etag", item.etag),
            # Revalidated after a day: a new tabserve may pin a new version of the package.
            (b"cache-control", b"public, max-age=86400"),
            (b"vary", b"accept-encoding"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if call.header(b"if-none-match").encode("latin-1") == item.etag:
            return Reply(b"", 304, item.media_type, headers)
        if "gzip" in call.header(b"accept-encoding"):
            headers.append((b"content-encoding", b"gzip"))
            return Reply(item.gzipped, 200, item.media_type, headers)
        return Reply(item.raw, 200, item.media_type, headers)

    # Not API: left out of the OpenAPI document.
    return Route(prefix + "/{name}", asset, in_schema=False)
