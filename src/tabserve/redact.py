"""Secrets out of what tabserve prints: passwords in URLs are masked before any output.

Database and tracking URLs may carry credentials (``postgresql://user:secret@host/db``,
``http://user:token@mlflow:5000``). Anything that echoes such a URL — ``tabserve doctor``, a
start-up line, an error message — prints ``mask_url(url)`` instead, and passes text that may
quote the URL (a driver's error message) through ``scrub``. Standard library only.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with the password (and a token in the user part of an http URL) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and not (parts.username and parts.scheme.startswith("http")):
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    if parts.password is None:  # http://TOKEN@host: the user part is the secret
        user = MASK
    else:
        user = f"{user}:{MASK}"
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def secrets_of(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password] if parts.password else []
    if parts.username and parts.password is None and parts.scheme.startswith("http"):
        found.append(parts.username)
    # As written in the URL and as a driver would quote it, decoded.
    return [v for s in found if s for v in {s, unquote(s)}]


def scrub(text: str, *urls: str) -> str:
    """``text`` with every URL in ``urls`` masked, and their secrets removed wherever quoted."""
    masked: list[str] = []
    for i, url in enumerate(u for u in urls if u):
        # The URL itself reads as mask_url has it; a placeholder keeps its user name intact.
        text = text.replace(url, f"\x00{i}\x00")
        masked.append(mask_url(url))
        for secret in secrets_of(url):
            text = text.replace(secret, MASK)
    for i, url in enumerate(masked):
        text = text.replace(f"\x00{i}\x00", url)
    return text
