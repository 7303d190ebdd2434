"""Put this directory on PYTHONPATH to learn which modules a real process had loaded at exit.

Python imports ``sitecustomize`` at start-up in every interpreter; this one registers an exit
hook that writes ``sorted(sys.modules)`` to ``$TABSERVE_TEST_MODULES_DIR/<pid>-<script>.json``
(the script is the file ``-m`` ran, e.g. ``server.py``). A process that ``exec``s another
(``tabserve serve``) runs no exit hook before it does, so only the server process writes one.
Nothing is written when the variable is unset. Used by the tracing tests: with tracing off the
server process must never have imported OpenTelemetry.
"""

import atexit
import json
import os
import sys


def _write_modules() -> None:
    directory = os.environ.get("TABSERVE_TEST_MODULES_DIR")
    if not directory:
        return
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    path = os.path.join(directory, f"{os.getpid()}-{script}.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(sorted(sys.modules), out)


atexit.register(_write_modules)
