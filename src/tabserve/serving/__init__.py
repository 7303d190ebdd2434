"""tabserve.serving: the server process and everything it needs, nothing it does not.

    server.py      ``tabserve serve``: resolve once, exec a clean process, run uvicorn workers
    app.py         the ASGI app: routes + middleware + one error handler over a ServerState
    state.py       ServerState, what routes read
    lifecycle.py   resolve → load → build the data plane → swap → watch the registry alias
    rest/          HTTP routes per protocol (v1, v2) and operations (/health, /ready, /docs)
    codecs/        protocol bodies ↔ records, columns and answers (no HTTP framework)
    dataplane.py   row limit → validation → batcher → runtime → metrics → prediction log
    validation/    the FeatureSpec's rules for records and columns, the OOD guard
    batcher.py     DynamicBatcher: concurrent requests into one runtime call
    runtimes.py    OnnxRuntime (default), SklearnRuntime (fallback): arrays in, arrays out
    middleware/    request metrics; body limit after decompression
    errors.py      ServingError and its subclasses: every non-200 answer
    metrics.py     the Prometheus metrics, correct across workers

Serving imports neither training nor monitoring (tests/unit/test_imports.py checks the graph).
"""
