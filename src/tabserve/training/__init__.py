"""tabserve.training: experiment configs, pipelines, grid search, MLflow logging, ONNX export.

``fit_model_dir`` is the library shortcut from a DataFrame to a servable model directory.
"""

from tabserve.training.fit import fit_model_dir

__all__ = ["fit_model_dir"]
