"""The hand-written peer: FastAPI + a pydantic model of the fields + a pickled sklearn pipeline.

This is the pattern the reference projects build by hand, kept as they write it: a pydantic
model of the request, ``pd.DataFrame([record.dict()])`` per request, then ``model.predict`` and
``predict_proba`` on it, in a plain ``def`` endpoint (FastAPI runs it in its thread pool). The
only convenience is that the pydantic model is generated from ``feature_spec.json`` at start-up
instead of being typed out, so the same file serves any tabserve model. Nothing here imports
tabserve.

    python handwritten_server.py --model model.joblib --spec feature_spec.json --port 8003
"""

# No ``from __future__ import annotations``: FastAPI must see the generated Record class itself
# in the endpoint signatures, not a string it cannot resolve.
import argparse
import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, create_model

JSON_TYPES: dict[str, type] = {"int64": int, "float64": float, "string": str, "bool": bool}


def request_model(spec: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model with one field per feature, Optional where the feature is nullable."""
    fields: dict[str, Any] = {}
    for feature in spec["features"]:
        kind = JSON_TYPES[feature["dtype"]]
        if feature["nullable"]:
            fields[feature["name"]] = (kind | None, None)
        else:
            fields[feature["name"]] = (kind, ...)
    return create_model("Record", **fields)


def to_frame(rows: list[dict[str, Any]], spec: dict[str, Any]) -> pd.DataFrame:
    """The DataFrame the pipeline was fitted on: the raw columns, in the spec's order."""
    return pd.DataFrame(rows, columns=[f["name"] for f in spec["features"]])


def create_app(model_path: Path, spec_path: Path) -> FastAPI:
    model = joblib.load(model_path)
    spec = json.loads(spec_path.read_text())
    classes = [str(c) for c in model.classes_]
    Record = request_model(spec)
    app = FastAPI(title="hand-written FastAPI + pickle")

    def answer(frame: pd.DataFrame) -> list[dict[str, Any]]:
        labels = model.predict(frame)
        probabilities = model.predict_proba(frame)
        return [
            {
                "prediction": label.item() if hasattr(label, "item") else label,
                "probabilities": dict(zip(classes, map(float, row), strict=True)),
            }
            for label, row in zip(labels, probabilities, strict=True)
        ]

    # Annotations are the generated class, so FastAPI validates the body against it.
    def predict(record: Record) -> dict[str, Any]:  # type: ignore[valid-type]
        frame = to_frame([record.model_dump()], spec)  # type: ignore[attr-defined]
        return answer(frame)[0]

    def predict_batch(records: list[Record]) -> dict[str, Any]:  # type: ignore[valid-type]
        frame = to_frame([r.model_dump() for r in records], spec)  # type: ignore[attr-defined]
        return {"predictions": answer(frame)}

    app.post("/predict")(predict)
    app.post("/predict/batch")(predict_batch)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="hand-written FastAPI + pickle server")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    args = parser.parse_args()
    app = create_app(args.model, args.spec)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
