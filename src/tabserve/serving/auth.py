"""API keys: ``Authorization: Bearer <key>`` on every route but the health probes.

Off unless ``TABSERVE_API_KEYS`` (one or more keys, comma-separated) is set. Keys are compared
in constant time against every configured key, so the answer's timing says nothing about how
much of a key was right or which key matched. A missing or wrong key is 401 with
``WWW-Authenticate: Bearer``; the key never appears in a log line, an error body or a metric.
Health and readiness probes stay open (a kubelet or a load balancer has no key); ``/metrics``
is protected too unless ``TABSERVE_METRICS_PUBLIC=true``.
"""

from __future__ import annotations

import hmac

from tabserve.serving.errors import ServingError


class Unauthorized(ServingError):
    status = 401
    headers = {"www-authenticate": 'Bearer realm="tabserve"'}


class ApiKeys:
    def __init__(self, keys: str | None) -> None:
        self._keys = [k.strip().encode() for k in (keys or "").split(",") if k.strip()]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: bytes | None) -> None:
        """Raise Unauthorized unless ``authorization`` is ``Bearer <a configured key>``."""
        if authorization is None:
            raise Unauthorized("this server needs an API key: send 'Authorization: Bearer KEY'")
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            raise Unauthorized("send the API key as 'Authorization: Bearer KEY'")
        token = token.strip()
        matched = False
        for key in self._keys:  # every key, every time: no early exit to time
            matched |= hmac.compare_digest(token, key)
        if not matched:
            raise Unauthorized("the API key is not valid")
