"""Pure-ASGI middleware, one concern per module (BaseHTTPMiddleware would cost a task and a
memory stream per request on the hot path).

    metrics.py  requests by route and status, latency (outermost: it sees every answer)
    body.py     Content-Encoding (gzip, deflate) decoded once, the body limit on inflated bytes
"""
