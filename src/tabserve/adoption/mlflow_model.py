"""What an MLflow model directory says about itself: flavour, signature, input example.

Read through MLflow's own ``Model`` API (the MLmodel file format is MLflow's to define), and
loaded through its flavours, so anything a team logged with ``mlflow.sklearn``,
``mlflow.xgboost`` or ``mlflow.lightgbm`` is read the way MLflow itself reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabserve.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

# Flavours tabserve can serve natively and convert to ONNX, in order of preference.
FLAVORS = ("sklearn", "xgboost", "lightgbm")


@dataclass(frozen=True)
class Column:
    """One input column of the signature: its name, MLflow type and whether it is required."""

    name: str
    mlflow_type: str  # string, double, float, long, integer, boolean, ...
    required: bool = True


@dataclass
class MlflowModel:
    path: Path
    flavor: str
    columns: list[Column]  # empty when the model has no (column) signature
    output_name: str | None
    example: pd.DataFrame | None
    flavor_conf: dict[str, Any]

    @classmethod
    def read(cls, path: Path, uri: str) -> MlflowModel:
        from mlflow.models import Model

        try:
            model = Model.load(str(path))
        except Exception as exc:
            raise UserError(f"{uri}: not a readable MLflow model ({exc})") from None
        flavor = next((f for f in FLAVORS if f in model.flavors), None)
        if flavor is None:
            have = ", ".join(sorted(model.flavors)) or "none"
            raise UserError(
                f"{uri} is an MLflow model of the flavour(s) {have}; tabserve serves the "
                f"{', '.join(FLAVORS)} flavours (log the model with mlflow.sklearn.log_model, ...)"
            )
        columns: list[Column] = []
        output_name = None
        signature = model.signature
        if signature is not None:
            if signature.inputs.is_tensor_spec():
                raise UserError(
                    f"{uri} has a tensor signature; tabserve serves tabular models whose "
                    "signature names columns (log the model with a DataFrame input example)"
                )
            for spec in signature.inputs.inputs:
                if not spec.name:
                    raise UserError(f"{uri}: its signature has an input column without a name")
                columns.append(
                    Column(spec.name, str(spec.type.name), bool(getattr(spec, "required", True)))
                )
            outputs = signature.outputs.inputs if signature.outputs is not None else []
            if len(outputs) == 1 and getattr(outputs[0], "name", None):
                output_name = str(outputs[0].name)
        example = None
        try:
            loaded = model.load_input_example(str(path))
        except Exception:  # an unreadable example is no reason not to serve the model
            loaded = None
        import pandas as pd

        if isinstance(loaded, pd.DataFrame) and len(loaded):
            example = loaded
        elif isinstance(loaded, dict) and loaded:
            example = pd.DataFrame(loaded if _is_columnar(loaded) else [loaded])
        return cls(path, flavor, columns, output_name, example, dict(model.flavors[flavor]))

    def load(self) -> Any:
        """The native model object (a sklearn estimator or pipeline, an XGBoost or LightGBM
        model): unpickles the file, so only for models the user named."""
        import importlib

        module = importlib.import_module(f"mlflow.{self.flavor}")
        try:
            return module.load_model(str(self.path))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{self.path}: MLflow could not load the {self.flavor} model: {first}"
            ) from None


def _is_columnar(value: dict[str, Any]) -> bool:
    return all(isinstance(v, list) for v in value.values())
