"""Model runtimes: a columnar numpy batch in, labels (and class probabilities) out.

A runtime knows nothing about HTTP or JSON. Columns arrive in validation's one convention
(numeric and boolean float64 with NaN for missing, categorical ``str`` with "" for missing).

- ``OnnxRuntime`` (the default; no scikit-learn, scipy or pandas): one graph input per feature,
  shape [N, 1]; each column is cast once to the type the graph declares for it (double, float,
  int64, string or bool), so models converted from other pipelines need no special path.
- ``NativeRuntime``: the model's own library through its MLflow flavour (sklearn, xgboost,
  lightgbm), for models without a usable ONNX file. It builds the DataFrame the model was
  trained on from ``ModelDir.model_inputs`` and imports pandas and the flavour only when chosen.
  It unpickles the model file (pickle runs code), and says so when it loads.

``load_runtime(model_dir, "auto")`` picks ONNX when the model has it and falls back to the
native runtime with one log line saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from tabserve.errors import UserError
from tabserve.modeldir import ModelDir, ModelInput

RuntimeName = Literal["auto", "onnx", "native", "sklearn"]
log = logging.getLogger("tabserve.serving")


@dataclass
class Prediction:
    """Per-row outputs. ``labels``: class labels (classification) or values (regression)."""

    labels: np.ndarray
    probabilities: np.ndarray | None = None

    def slice(self, start: int, stop: int) -> Prediction:
        probs = None if self.probabilities is None else self.probabilities[start:stop]
        return Prediction(self.labels[start:stop], probs)


class Runtime(Protocol):
    name: str

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        """Columns are 1-D arrays keyed by feature name (see validation/batch.py)."""
        ...


def _integers(column: np.ndarray) -> np.ndarray:
    """float64 values or integer-code texts → int64 (validation proved them whole)."""
    if column.dtype == object:  # an integer-coded category arrives as its text, "3"
        return np.array([int(float(v)) for v in column.tolist()], dtype=np.int64)
    if np.isnan(column).any():
        raise ValueError("a missing value for an integer model input")
    return column.astype(np.int64)


def _floats(column: np.ndarray) -> np.ndarray:
    """A number-coded category's texts ("3", "" for missing) → float64; numbers as they are."""
    if column.dtype != object:
        return column
    return np.array([float(v) if v != "" else np.nan for v in column.tolist()])


def _onnx_cast(onnx_type: str, text: bool) -> Callable[[np.ndarray], np.ndarray] | None:
    """The cast from validation's column to an ONNX input type (None: none needed).
    ``text``: the feature arrives as text (a category); a numeric input then takes its code."""
    if onnx_type == "tensor(string)":
        return None
    if onnx_type == "tensor(double)":
        return _floats if text else None
    if onnx_type == "tensor(float)":
        return lambda c: _floats(c).astype(np.float32)
    if onnx_type == "tensor(int64)":
        return _integers
    if onnx_type == "tensor(bool)":
        return lambda c: c.astype(bool)
    raise UserError(f"model.onnx has an input of type {onnx_type}, which tabserve cannot feed")


class OnnxRuntime:
    """onnxruntime session with one input per feature, shape [N, 1] (the model contract)."""

    name = "onnx"

    def __init__(self, model_dir: ModelDir, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        if not model_dir.has_onnx:
            raise UserError(
                f"{model_dir.path} has no model.onnx ({model_dir.onnx_reason}); "
                "serve it with --runtime native"
            )
        options = ort.SessionOptions()
        # One thread per worker: parallelism comes from worker processes, and extra intra-op
        # threads on a small model cost more in wake-ups than they save.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(model_dir.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a truncated or corrupt file: name it, not the library
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{model_dir.onnx_path} cannot be loaded: {first}") from None
        self.spec = model_dir.spec()
        inputs = self._session.get_inputs()
        missing = {i.name for i in inputs} - set(self.spec.names)
        if missing:
            raise UserError(f"model.onnx expects inputs the feature spec lacks: {sorted(missing)}")
        text = {f.name for f in self.spec.features if f.kind == "categorical"}
        self._feeds = [(i.name, _onnx_cast(i.type, i.name in text)) for i in inputs]
        outputs = [o.name for o in self._session.get_outputs()]
        self._classifier = self.spec.target.task == "classification"
        if self._classifier:
            self._label_out = "label" if "label" in outputs else outputs[0]
            probs = "probabilities" if "probabilities" in outputs else None
            if probs is None and len(outputs) > 1:
                probs = outputs[1]
            self._outputs = [self._label_out] + ([probs] if probs else [])
        else:
            self._outputs = ["variable" if "variable" in outputs else outputs[0]]

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        feed = {}
        for name, cast in self._feeds:
            column = columns[name] if cast is None else cast(columns[name])
            feed[name] = column.reshape(-1, 1)
        results = self._session.run(self._outputs, feed)
        if not self._classifier:
            return Prediction(np.asarray(results[0]).reshape(-1))
        probs = np.asarray(results[1]) if len(results) > 1 else None
        return Prediction(np.asarray(results[0]).reshape(-1), probs)


def _frame_column(column: np.ndarray, model_input: ModelInput) -> Any:
    """Validation's column as the model's training frame had it."""
    dtype = model_input.dtype
    if dtype == "string":
        if model_input.missing == "nan" and column.dtype == object:
            out = column.copy()
            out[out == ""] = np.nan  # a missing category, as pandas reads it from a CSV
            return out
        return column
    if dtype == "int64":
        return _integers(column)
    if dtype == "float32":
        return column.astype(np.float32)
    if dtype == "bool":
        return column.astype(bool)
    return _floats(column)  # a float-coded category arrives as its text


def _load_native(model_dir: ModelDir) -> Any:
    flavor = model_dir.flavor
    if flavor == "xgboost":
        import mlflow.xgboost

        return mlflow.xgboost.load_model(str(model_dir.path))
    if flavor == "lightgbm":
        import mlflow.lightgbm

        return mlflow.lightgbm.load_model(str(model_dir.path))
    if flavor == "sklearn":
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(model_dir.path))
    raise UserError(f"{model_dir.path}: tabserve has no native runtime for the {flavor!r} flavour")


class NativeRuntime:
    """The model's own library (its MLflow flavour), fed a DataFrame built from the columns."""

    def __init__(self, model_dir: ModelDir, *, warn: bool = True) -> None:
        if not model_dir.has_sklearn:
            raise UserError(f"{model_dir.path} holds no MLflow model (no MLmodel file)")
        import pandas as pd  # lazily: only a native model needs pandas

        self.name = model_dir.flavor
        (log.warning if warn else log.debug)(
            "native %s runtime: loading the model file from %s; an unpickled file runs code, "
            "so serve only models from a registry you trust (ONNX loads no pickle)",
            self.name,
            model_dir.path,
        )
        self._pd = pd
        try:
            self._model: Any = _load_native(model_dir)
        except UserError:
            raise
        except Exception as exc:  # a missing or unreadable model file: name the directory
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{model_dir.path}: the {self.name} model cannot be loaded: {first}"
            ) from None
        self.spec = model_dir.spec()
        self._inputs = model_dir.model_inputs(self.spec)
        self._classifier = self.spec.target.task == "classification" and hasattr(
            self._model, "predict_proba"
        )

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        frame = self._pd.DataFrame(
            {m.name: _frame_column(columns[m.name], m) for m in self._inputs}
        )
        if self._classifier:
            probs = np.asarray(self._model.predict_proba(frame), dtype=np.float64)
            classes = np.asarray(self._model.classes_)
            return Prediction(classes[probs.argmax(axis=1)], probs)
        return Prediction(np.asarray(self._model.predict(frame)).reshape(-1))


# The name the fallback was known by before other flavours existed.
SklearnRuntime = NativeRuntime


def load_runtime(
    model_dir: ModelDir, name: RuntimeName | str = "auto", intra_op_threads: int = 1
) -> Runtime:
    """Build the named runtime; ``auto`` is ONNX when present, else the native one."""
    if name == "auto":
        if model_dir.has_onnx:
            return OnnxRuntime(model_dir, intra_op_threads=intra_op_threads)
        log.warning(
            "%s has no model.onnx (%s): serving it with its native runtime instead",
            model_dir.path,
            model_dir.onnx_reason,
        )
        return NativeRuntime(model_dir)
    if name == "onnx":
        return OnnxRuntime(model_dir, intra_op_threads=intra_op_threads)
    if name in ("native", "sklearn"):
        return NativeRuntime(model_dir)
    raise UserError(f"unknown runtime {name!r}: choose auto, onnx or native")
