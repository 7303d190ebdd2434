"""LabelledXGBClassifier: XGBoost's classifier for any class labels.

XGBoost's sklearn classifier accepts only the labels 0..k-1; every other family (and the
FeatureSpec) takes the target's own labels ("setosa", True, 3). This subclass encodes the labels
in ``fit`` and answers with them, so the pipeline, its ONNX export (onnxmltools labels the
graph's outputs by ``classes_``) and the server all speak the target's labels. Imported only
when the xgboost family is used: importing it imports xgboost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xgboost import XGBClassifier


class LabelledXGBClassifier(XGBClassifier):
    def fit(self, X: Any, y: Any, **kwargs: Any) -> LabelledXGBClassifier:
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        self.__dict__.pop("labels_", None)  # XGBoost checks classes_ against 0..k-1 while fitting
        super().fit(X, codes, **kwargs)
        self.labels_ = labels
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return np.arange(self.n_classes_) if labels is None else labels

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        return np.asarray(self.labels_)[np.asarray(super().predict(X, **kwargs), dtype=int)]
