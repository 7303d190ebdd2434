"""Write bytecode for the modules a serving process imports, and for nothing else.

The image is installed without .pyc (pip's compile-all writes about twice the bytecode serving ever
loads), and its user cannot write to the venv, so without any .pyc every start would compile
the serving path again (measured in docs/adr/0011). Importing the serving path once at build
time writes exactly the .pyc files those imports need.
"""

import importlib
import sys

MODULES = [
    # `tabserve serve DIR`: the CLI parent resolves the directory, then execs the server.
    "tabserve.cli",
    "tabserve.adoption",
    "tabserve.serving.server",
    "tabserve.serving.app",
    "tabserve.serving.lifecycle",
    "tabserve.predlog.writer",
    "tabserve.predlog.store",
    # What uvicorn picks at run time (loop="auto", http="auto", lifespan="auto").
    "uvicorn.main",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "uvicorn.supervisors.multiprocess",
    # The runtime and the prediction log's drivers.
    "onnxruntime",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "prometheus_client",
    "prometheus_client.multiprocess",
]

if __name__ == "__main__":
    sys.dont_write_bytecode = False
    for name in MODULES:
        importlib.import_module(name)
