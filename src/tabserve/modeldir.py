"""The on-disk layout of one model version: what training writes and serving reads.

A model directory is an MLflow sklearn model (``MLmodel``, the pickled pipeline) with tabserve's
own files beside it, so ``mlflow models serve`` can serve the very same artifact:

    MLmodel, model.pkl, ...     MLflow's sklearn flavour (the fallback runtime, and for peers)
    feature_spec.json           the FeatureSpec (see spec.py)
    model.onnx                  the ONNX export; absent when conversion or parity failed
    reference_sample.json       a columnar sample of training features (the drift reference)
    tabserve.json               export facts (ONNX parity, reason when ONNX is missing) and,
                                once resolved from the registry, the model name and version

This module is shared by training and serving and imports neither side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tabserve.spec import FeatureSpec

ONNX_FILE = "model.onnx"
INFO_FILE = "tabserve.json"
REFERENCE_FILE = "reference_sample.json"
MLMODEL_FILE = "MLmodel"


@dataclass(frozen=True)
class ModelDir:
    path: Path

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def has_onnx(self) -> bool:
        return self.onnx_path.is_file()

    @property
    def has_sklearn(self) -> bool:
        return (self.path / MLMODEL_FILE).is_file()

    def spec(self) -> FeatureSpec:
        return FeatureSpec.load(self.path)

    def info(self) -> dict[str, Any]:
        p = self.path / INFO_FILE
        return orjson.loads(p.read_bytes()) if p.is_file() else {}

    def write_info(self, **updates: Any) -> None:
        info = self.info() | updates
        (self.path / INFO_FILE).write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))

    @property
    def name(self) -> str:
        return str(self.info().get("name") or self.path.name)

    @property
    def version(self) -> str:
        return str(self.info().get("version") or "local")

    def reference_sample(self) -> dict[str, list[Any]]:
        p = self.path / REFERENCE_FILE
        return orjson.loads(p.read_bytes()) if p.is_file() else {}

    def check(self) -> None:
        """Fail with a plain message when the directory is not a tabserve model."""
        if not (self.path / "feature_spec.json").is_file():
            raise FileNotFoundError(
                f"{self.path} has no feature_spec.json: it is not a tabserve model directory "
                "(train one with `tabserve train CONFIG`)"
            )
        if not (self.has_onnx or self.has_sklearn):
            raise FileNotFoundError(f"{self.path} holds neither model.onnx nor an MLflow model")
