"""The strongest peer a skilled user writes by hand: FastAPI + pydantic + onnxruntime.

The request is a pydantic model of the fields (generated from feature_spec.json, Optional where
the feature is nullable); the async handler builds one [1, 1] array per graph input in the type
the graph declares and makes one session call per request (one intra-op thread, as tabserve
runs); the answer is the label and the class probabilities. It serves the very model.onnx
tabserve serves, so the two differ only in the server around the model. Nothing here imports
tabserve.

    python handwritten_onnx_server.py --onnx model.onnx --spec feature_spec.json --port 8005
"""

# No ``from __future__ import annotations``: FastAPI must see the generated Record class.
import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, create_model

JSON_TYPES: dict[str, type] = {"int64": int, "float64": float, "string": str, "bool": bool}


def request_model(spec: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for feature in spec["features"]:
        kind = JSON_TYPES[feature["dtype"]]
        fields[feature["name"]] = (kind | None, None) if feature["nullable"] else (kind, ...)
    return create_model("Record", **fields)


def create_app(onnx_path: Path, spec_path: Path) -> FastAPI:
    spec = json.loads(spec_path.read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    classes = [str(c) for c in spec["target"]["classes"]]
    inputs = [(i.name, i.type) for i in session.get_inputs()]
    Record = request_model(spec)
    app = FastAPI(title="hand-written FastAPI + onnxruntime")

    def feed(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        out = {}
        for name, kind in inputs:
            values = [r[name] for r in rows]
            if kind == "tensor(string)":
                array = np.array([["" if v is None else str(v)] for v in values], dtype=object)
            elif kind == "tensor(int64)":
                array = np.array([[v] for v in values], dtype=np.int64)
            elif kind == "tensor(float)":
                array = np.array([[np.nan if v is None else v] for v in values], dtype=np.float32)
            else:
                array = np.array([[np.nan if v is None else v] for v in values], dtype=np.float64)
            out[name] = array
        return out

    def answer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        labels, probabilities = session.run(["label", "probabilities"], feed(rows))
        return [
            {
                "prediction": label.item(),
                "probabilities": dict(zip(classes, row.tolist(), strict=True)),
            }
            for label, row in zip(labels.reshape(-1), probabilities, strict=True)
        ]

    async def predict(record: Record) -> dict[str, Any]:  # type: ignore[valid-type]
        return answer([record.model_dump()])[0]  # type: ignore[attr-defined]

    async def predict_batch(records: list[Record]) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"predictions": answer([r.model_dump() for r in records])}  # type: ignore[attr-defined]

    app.post("/predict")(predict)
    app.post("/predict/batch")(predict_batch)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="hand-written FastAPI + onnxruntime server")
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8005)
    args = parser.parse_args()
    app = create_app(args.onnx, args.spec)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
