"""The on-disk layout of one model version: what training writes and serving reads.

A model directory is an MLflow sklearn model (``MLmodel``, the pickled pipeline) with tabserve's
own files beside it, so ``mlflow models serve`` can serve the very same artifact:

    MLmodel, model.pkl, ...     MLflow's sklearn flavour (the fallback runtime, and for peers)
    feature_spec.json           the FeatureSpec (see spec.py)
    model.onnx                  the ONNX export; absent when conversion or parity failed
    reference_sample.json       a columnar sample of training features (the drift reference)
    tabserve.json               export facts (ONNX parity, reason when ONNX is missing) and,
                                once resolved from the registry, the model name and version;
                                for an adopted model (one tabserve did not train) also its
                                flavour and ``model_inputs``, how each feature reaches it

Validation hands runtimes one column per feature in one convention (numeric and boolean as
float64 with NaN for missing, categorical as ``str`` with "" for missing). A model trained by
tabserve takes exactly that. A model trained elsewhere may want other dtypes — ``long`` columns,
integer category codes, NaN rather than "" for a missing category — which ``model_inputs``
records, so the native runtime builds the frame the model was trained on.

This module is shared by training and serving and imports neither side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from tabserve.errors import UserError
from tabserve.spec import FILENAME as SPEC_FILE
from tabserve.spec import FeatureSpec

ONNX_FILE = "model.onnx"
INFO_FILE = "tabserve.json"
REFERENCE_FILE = "reference_sample.json"
MLMODEL_FILE = "MLmodel"


InputDType = Literal["float64", "float32", "int64", "string", "bool"]


@dataclass(frozen=True)
class ModelInput:
    """How one feature reaches the model: the column dtype, and what a missing value is."""

    name: str
    dtype: InputDType
    # "nan": NaN (None in an object column); "empty": the empty string.
    missing: Literal["nan", "empty"] = "nan"

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "dtype": self.dtype, "missing": self.missing}


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

    @property
    def onnx_reason(self) -> str:
        """Why there is no model.onnx, as training recorded it (or a generic reason)."""
        return str(self.info().get("onnx_reason") or "the export failed or was skipped")

    def spec(self) -> FeatureSpec:
        try:
            return FeatureSpec.load(self.path)
        except FileNotFoundError:
            raise UserError(f"{self.path / SPEC_FILE}: no such file") from None
        except ValueError as exc:  # bad JSON, a schema mismatch (pydantic's is a ValueError)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{self.path / SPEC_FILE} is not a valid feature spec: {first}"
            ) from None

    def info(self) -> dict[str, Any]:
        p = self.path / INFO_FILE
        return orjson.loads(p.read_bytes()) if p.is_file() else {}

    def write_info(self, **updates: Any) -> None:
        info = self.info() | updates
        (self.path / INFO_FILE).write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))

    def model_inputs(self, spec: FeatureSpec | None = None) -> list[ModelInput]:
        """Each feature's input to the model, in spec order (tabserve's convention unless
        tabserve.json says otherwise)."""
        spec = spec or self.spec()
        recorded = {m["name"]: m for m in self.info().get("model_inputs") or []}
        out = []
        for f in spec.features:
            if f.name in recorded:
                r = recorded[f.name]
                out.append(ModelInput(f.name, r["dtype"], r.get("missing", "nan")))
            elif f.kind == "categorical":
                out.append(ModelInput(f.name, "string", "empty"))
            else:
                out.append(ModelInput(f.name, "float64", "nan"))
        return out

    @property
    def flavor(self) -> str:
        """The MLflow flavour the native runtime loads (sklearn, xgboost or lightgbm)."""
        return str(self.info().get("flavor") or "sklearn")

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
        """Raise a UserError naming what is missing when this is not a servable model dir."""
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such model directory")
        if not (self.path / SPEC_FILE).is_file():
            raise UserError(
                f"{self.path} has no {SPEC_FILE}: it is not a tabserve model directory "
                "(train one with `tabserve train CONFIG`)"
            )
        if not (self.has_onnx or self.has_sklearn):
            raise UserError(f"{self.path} holds neither {ONNX_FILE} nor an MLflow model")
        self.spec()  # parses: a corrupt spec is a one-line error here, not a worker's crash
