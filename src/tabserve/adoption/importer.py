"""``tabserve import``: a fitted pipeline from a file (or an MLflow model) into the registry,
registered exactly as ``tabserve train`` registers its own.

    load the file the user named      skops (with its trusted-type check), or joblib / pickle /
                                      cloudpickle, saying plainly that unpickling runs code
    save it as a plain MLflow model   sklearn flavour, signature and input example from --data
    adopt it with --data as reference FeatureSpec, ONNX with parity, reference sample
    score it on --data                the served runtime's answers, the config's metric
    register it                       a run in the tabserve-registered experiment
    the champion rule                 the alias moves only when it beats the incumbent

Only the file named on the command line is ever unpickled.
"""

from __future__ import annotations

import logging
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabserve import registry
from tabserve.errors import UserError
from tabserve.settings import Settings

log = logging.getLogger("tabserve.adoption")

PICKLE_SUFFIXES = (".pkl", ".pickle", ".cloudpickle", ".joblib")
SKOPS_SUFFIXES = (".skops",)


@dataclass
class ImportResult:
    name: str
    version: str
    metric: str
    score: float | None
    onnx: bool
    onnx_reason: str | None
    rows_checked: int
    decision: Any  # training.champion.Decision


def load_model_file(path: Path, trusted: list[str]) -> Any:
    """The estimator in ``path``; refuses skops types the user did not trust by name."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if suffix in SKOPS_SUFFIXES:
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        refused = sorted(set(untrusted) - set(trusted))
        if refused:
            raise UserError(
                f"{path} holds types skops does not trust by default: {', '.join(refused)}; "
                "pass --trust TYPE for each one you trust"
            )
        return skops.io.load(path, trusted=untrusted)
    if suffix in PICKLE_SUFFIXES:
        log.warning(
            "loading %s unpickles it, which runs any code the file holds: import only files "
            "you trust (a .skops file is checked for unsafe types instead)",
            path,
        )
        if suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with path.open("rb") as fh:
            return pickle.load(fh)
    raise UserError(
        f"{path}: unknown model file type {suffix!r}; use .skops, .joblib, .pkl or .pickle "
        "(or an MLflow model directory or runs:/ URI)"
    )


def import_model(
    source: str,
    data: Path,
    target: str,
    name: str,
    settings: Settings,
    *,
    alias: str = "champion",
    metric: str | None = None,
    trusted: list[str] | None = None,
) -> ImportResult:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from tabserve.adoption import adopt, digest
    from tabserve.datasets import load_table
    from tabserve.training.champion import Decision, decide
    from tabserve.training.evaluation import DEFAULT_METRIC, evaluate_model_dir, metrics_for

    frame = load_table(data)
    if target not in frame.columns:
        have = ", ".join(map(str, frame.columns[:20]))
        raise UserError(f"{data}: no column {target!r} (columns: {have})")
    with tempfile.TemporaryDirectory(prefix="tabserve-import-") as tmp:
        work = Path(tmp)
        source_path = Path(source)
        if source.startswith(("runs:/", "models:/")) or (source_path / "MLmodel").is_file():
            mlflow_dir = registry.fetch(source, settings)
        else:
            model = load_model_file(source_path, trusted or [])
            names = getattr(model, "feature_names_in_", None)
            columns = [str(c) for c in names] if names is not None else None
            columns = columns or [str(c) for c in frame.columns if c != target]
            absent = [c for c in columns if c not in frame.columns]
            if absent:
                raise UserError(
                    f"{data} lacks the model's column(s) {', '.join(map(repr, absent))}"
                )
            features = frame[columns]
            example = features.head(5)
            try:
                with warnings.catch_warnings():  # MLflow's hint about integer columns
                    warnings.simplefilter("ignore")
                    signature = infer_signature(example, model.predict(example))
            except Exception as exc:
                raise UserError(
                    f"{source}: the model does not predict on {data}'s columns ({exc})"
                ) from None
            mlflow_dir_path = work / "mlflow-model"
            logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
            mlflow.sklearn.save_model(
                model, str(mlflow_dir_path), signature=signature, input_example=example,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            )  # fmt: skip
            from tabserve.modeldir import ModelDir

            mlflow_dir = ModelDir(mlflow_dir_path)
        adopted = adopt(
            mlflow_dir, work / "model", f"import:{source}", digest(mlflow_dir.path),
            reference=data, target=target,
        )  # fmt: skip
        spec = adopted.spec()
        task = spec.target.task
        metric = metric or DEFAULT_METRIC[task]
        if metric not in metrics_for(task):
            raise UserError(f"metric {metric!r} does not fit a {task} model; use one of "
                            f"{', '.join(metrics_for(task))}")  # fmt: skip
        scores = evaluate_model_dir(adopted, frame)
        score = scores.get(metric)
        info = adopted.info()
        tags = {
            registry.TAG_METRIC_NAME: metric,
            registry.TAG_METRIC_VALUE: repr(score if score is not None else float("nan")),
            registry.TAG_ONNX: "yes" if adopted.has_onnx else "no",
        }
        version = registry.register_model_dir(adopted.path, name, settings, tags=tags)
    if score is None:
        decision = Decision(False, None, None, f"no {metric} on {data}: {alias} unchanged")
    elif alias == "champion":
        decision = decide(name, version, score, metric, frame, settings)
    else:
        previous = registry.promote(name, version, alias, settings)
        decision = Decision(True, previous, None, f"{name}@{alias} → version {version}")
    return ImportResult(
        name, version, metric, score, bool(info.get("onnx")), info.get("onnx_reason"),
        int(info.get("onnx_rows_checked") or 0), decision,
    )  # fmt: skip
