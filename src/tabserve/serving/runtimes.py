"""Model runtimes: a columnar numpy batch in, labels (and class probabilities) out.

A runtime knows nothing about HTTP or JSON. ``OnnxRuntime`` is the default (no scikit-learn,
scipy or pandas needed); ``SklearnRuntime`` is the fallback for models that did not convert and
imports scikit-learn, pandas and MLflow only when it is selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from tabserve.errors import UserError
from tabserve.modeldir import ModelDir
from tabserve.spec import FeatureSpec

RuntimeName = Literal["onnx", "sklearn"]


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


class OnnxRuntime:
    """onnxruntime session with one input per feature, shape [N, 1] (the model contract)."""

    name = "onnx"

    def __init__(self, model_dir: ModelDir, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        if not model_dir.has_onnx:
            raise UserError(
                f"{model_dir.path} has no model.onnx ({model_dir.onnx_reason}); "
                "serve it with --runtime sklearn"
            )
        options = ort.SessionOptions()
        # One thread per worker: parallelism comes from worker processes, and extra intra-op
        # threads on a small model cost more in wake-ups than they save.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(model_dir.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.spec = model_dir.spec()
        self._input_names = [i.name for i in self._session.get_inputs()]
        missing = set(self._input_names) - set(self.spec.names)
        if missing:
            raise UserError(f"model.onnx expects inputs the feature spec lacks: {sorted(missing)}")
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
        feed = {name: columns[name].reshape(-1, 1) for name in self._input_names}
        results = self._session.run(self._outputs, feed)
        if not self._classifier:
            return Prediction(np.asarray(results[0]).reshape(-1))
        probs = np.asarray(results[1]) if len(results) > 1 else None
        return Prediction(np.asarray(results[0]).reshape(-1), probs)


class SklearnRuntime:
    """The MLflow sklearn model itself, fed a DataFrame built from the same columns."""

    name = "sklearn"

    def __init__(self, model_dir: ModelDir) -> None:
        if not model_dir.has_sklearn:
            raise UserError(f"{model_dir.path} holds no MLflow sklearn model (no MLmodel file)")
        import mlflow.sklearn  # lazily: pulls scikit-learn, pandas and scipy
        import pandas as pd

        self._pd = pd
        self._model: Any = mlflow.sklearn.load_model(str(model_dir.path))
        self.spec: FeatureSpec = model_dir.spec()
        self._classifier = self.spec.target.task == "classification" and hasattr(
            self._model, "predict_proba"
        )

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        frame = self._pd.DataFrame({name: columns[name] for name in self.spec.names})
        if self._classifier:
            probs = np.asarray(self._model.predict_proba(frame), dtype=np.float64)
            classes = np.asarray(self._model.classes_)
            return Prediction(classes[probs.argmax(axis=1)], probs)
        return Prediction(np.asarray(self._model.predict(frame)).reshape(-1))


def load_runtime(
    model_dir: ModelDir, name: RuntimeName = "onnx", intra_op_threads: int = 1
) -> Runtime:
    """Build the named runtime for a model directory."""
    if name == "onnx":
        return OnnxRuntime(model_dir, intra_op_threads=intra_op_threads)
    if name == "sklearn":
        return SklearnRuntime(model_dir)
    raise UserError(f"unknown runtime {name!r}: choose onnx or sklearn")
