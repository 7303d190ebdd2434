"""Write an MLServer model repository for the pickled pipeline: settings.json + model-settings.json.

MLServer's scikit-learn runtime loads ``model.joblib`` with joblib and calls ``predict`` on what
the request decodes to. The pipeline wants the raw frame it was fitted on (named columns, each in
its signature type), so the model declares the pandas request codec (``content_type: "pd"``) and
each string input the ``str`` codec; a v2 client (or perf_analyzer, which sends no content types)
then gets the right DataFrame. Server-wide: one inference worker (MLServer's default), loopback
only, no access log (``debug: false``), as the other servers run without one.

    python mlserver_settings.py OUT_DIR --model model.joblib --spec feature_spec.json --port 8004
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

MODEL_FILE = "model.joblib"
V2_DATATYPES = {"string": "BYTES", "float64": "FP64", "int64": "INT64", "bool": "BOOL"}


def model_settings(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """model-settings.json: the sklearn runtime, the pandas codec, the inputs' metadata."""
    inputs = []
    for feature in spec["features"]:
        entry: dict[str, Any] = {
            "name": feature["name"],
            "datatype": V2_DATATYPES[feature["dtype"]],
            "shape": [-1, 1],
        }
        if feature["dtype"] == "string":
            entry["parameters"] = {"content_type": "str"}
        inputs.append(entry)
    return {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": f"./{MODEL_FILE}", "version": "1", "content_type": "pd"},
        "inputs": inputs,
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}],
    }


def server_settings(port: int, grpc_port: int, metrics_port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 1,
        "debug": False,
    }


def write_repository(
    out_dir: Path,
    *,
    model: Path,
    spec: Path,
    name: str,
    port: int,
    grpc_port: int,
    metrics_port: int,
) -> Path:
    """Lay out ``out_dir`` (replaced) as MLServer's model repository; returns it."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model_dir = out_dir / name
    model_dir.mkdir(parents=True)
    shutil.copyfile(model, model_dir / MODEL_FILE)
    settings = model_settings(name, json.loads(spec.read_text()))
    (model_dir / "model-settings.json").write_text(json.dumps(settings, indent=2))
    server = server_settings(port, grpc_port, metrics_port)
    (out_dir / "settings.json").write_text(json.dumps(server, indent=2))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description="write an MLServer model repository")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--name", default="titanic")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=8081)
    parser.add_argument("--metrics-port", type=int, default=8082)
    args = parser.parse_args()
    write_repository(
        args.out_dir,
        model=args.model,
        spec=args.spec,
        name=args.name,
        port=args.port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    print(args.out_dir)


if __name__ == "__main__":
    main()
