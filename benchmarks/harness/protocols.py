"""How each server is spoken to: request bodies for N records, and the labels in its answer.

Every server gets the same records; only the envelope differs (each server's documented
request format). ``decode`` returns one label per record (and the last class's probability when
the server sends probabilities) or raises ``ValueError``, so the load checker and the
correctness pass read answers the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from harness.model import MODEL_NAME, Record, model_input_record
from tabserve.loadtest.payloads import v2_body
from tabserve.spec import FeatureSpec


@dataclass(frozen=True)
class Answer:
    labels: list[Any]
    positive_proba: list[float] | None  # probability of the last class, when sent


@dataclass(frozen=True)
class Codec:
    name: str
    single_path: str
    batch_path: str
    encode: Callable[[list[Record], bool], bytes]  # (records, as a batch?) -> body
    decode: Callable[[bytes, int, bool], Answer]  # (body, records sent, as a batch?) -> answer
    checks_answers: bool = True  # False for the floor: its constant answer is not a prediction

    def path(self, batch: bool) -> str:
        return self.batch_path if batch else self.single_path


def _v1_item(item: Any, last_class: str) -> tuple[Any, float | None]:
    if not isinstance(item, dict) or "prediction" not in item:
        raise ValueError(f"no prediction in {str(item)[:200]}")
    probabilities = item.get("probabilities")
    proba = float(probabilities[last_class]) if isinstance(probabilities, dict) else None
    return item["prediction"], proba


def _v1_decode(last_class: str) -> Callable[[bytes, int, bool], Answer]:
    """tabserve's v1 answer (the hand-written server answers in the same shape)."""

    def decode(body: bytes, n: int, batch: bool) -> Answer:
        answer = orjson.loads(body)
        items = answer.get("predictions") if batch else [answer]
        if not isinstance(items, list) or len(items) != n:
            raise ValueError(f"expected {n} predictions, got {str(answer)[:200]}")
        pairs = [_v1_item(i, last_class) for i in items]
        probas = [p for _, p in pairs]
        return Answer(
            [label for label, _ in pairs],
            None if any(p is None for p in probas) else [float(p) for p in probas if p is not None],
        )

    return decode


def _v1_encode(records: list[Record], batch: bool) -> bytes:
    return orjson.dumps(records if batch else records[0])


def tabserve_codec(spec: FeatureSpec) -> Codec:
    last = str((spec.target.classes or [""])[-1])
    return Codec("tabserve-v1", "/predict", "/predict", _v1_encode, _v1_decode(last))


def handwritten_codec(spec: FeatureSpec) -> Codec:
    last = str((spec.target.classes or [""])[-1])
    return Codec("handwritten", "/predict", "/predict/batch", _v1_encode, _v1_decode(last))


def floor_codec() -> Codec:
    def decode(body: bytes, n: int, batch: bool) -> Answer:
        orjson.loads(body)
        return Answer([], None)

    return Codec("floor", "/predict", "/predict", _v1_encode, decode, checks_answers=False)


def mlflow_codec(spec: FeatureSpec) -> Codec:
    """``mlflow models serve``: ``dataframe_records`` in the model signature's types."""

    def encode(records: list[Record], batch: bool) -> bytes:
        rows = [model_input_record(spec, r) for r in records]
        return orjson.dumps({"dataframe_records": rows})

    def decode(body: bytes, n: int, batch: bool) -> Answer:
        predictions = orjson.loads(body).get("predictions")
        if not isinstance(predictions, list) or len(predictions) != n:
            raise ValueError(f"expected {n} predictions, got {body[:200]!r}")
        return Answer(predictions, None)

    return Codec("mlflow", "/invocations", "/invocations", encode, decode)


def _v2_outputs(body: bytes, name: str, n: int) -> list[Any]:
    outputs = orjson.loads(body).get("outputs")
    for output in outputs or []:
        if output.get("name") == name:
            data = output.get("data")
            if not isinstance(data, list) or len(data) != n:
                raise ValueError(f"output {name} has {str(data)[:100]}, expected {n} values")
            return data
    raise ValueError(f"no output {name!r} in {body[:200]!r}")


def mlserver_codec(spec: FeatureSpec) -> Codec:
    """MLServer's sklearn runtime over v2: one [n, 1] tensor per column, pandas codec."""
    path = f"/v2/models/{MODEL_NAME}/infer"

    def encode(records: list[Record], batch: bool) -> bytes:
        rows = [model_input_record(spec, r) for r in records]
        inputs = []
        for f in spec.features:
            text = f.dtype == "string"
            entry: dict[str, Any] = {
                "name": f.name,
                "shape": [len(rows), 1],
                "datatype": V2_DATATYPES[f.dtype],
                "data": [r[f.name] for r in rows],
            }
            if text:
                entry["parameters"] = {"content_type": "str"}
            inputs.append(entry)
        return orjson.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs})

    def decode(body: bytes, n: int, batch: bool) -> Answer:
        return Answer(_v2_outputs(body, "predict", n), None)

    return Codec("mlserver-v2", path, path, encode, decode)


V2_DATATYPES = {"string": "BYTES", "float64": "FP64", "int64": "INT64", "bool": "BOOL"}


def tabserve_v2_codec(spec: FeatureSpec) -> Codec:
    """tabserve's own v2 endpoint (what perf_analyzer drives), for the correctness pass."""
    path = f"/v2/models/{MODEL_NAME}/infer"
    last = len(spec.target.classes or [None]) - 1

    def encode(records: list[Record], batch: bool) -> bytes:
        return v2_body(spec, records)

    def decode(body: bytes, n: int, batch: bool) -> Answer:
        labels = _v2_outputs(body, "label", n)
        flat = _v2_outputs(body, "probabilities", n * (last + 1))
        return Answer(labels, [float(flat[i * (last + 1) + last]) for i in range(n)])

    return Codec("tabserve-v2", path, path, encode, decode)


def label_key(value: Any) -> str:
    """1, 1.0 and "1" are the same class label across JSON encodings."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
