"""HTTP routes, one module per protocol, each a thin layer over the data plane.

A route reads the body, hands it to its codec, runs ``plane.validate_*`` and ``plane.predict``,
and returns the codec's bytes. Every error is raised (serving/errors.py) and rendered by the
app's one handler. Routes close over the ServerState they are built with.

    v1.py       POST /predict, GET /spec
    v2.py       the Open Inference Protocol v2 REST endpoints
    mlflow.py   POST /invocations, as mlflow models serve answers it
    kserve_v1.py  KServe v1: POST /v1/models/{name}:predict
    feedback.py POST /feedback: ground truth, into the prediction log's database
    ops.py      /health, /ready, /metrics, /docs, /openapi.json
    openapi.py  the OpenAPI document, written from the FeatureSpec
"""
