"""Adoption: serve a model tabserve did not train — any MLflow sklearn, xgboost or lightgbm model.

``resolve(uri, settings, reference=...)`` is what ``tabserve serve``, ``fetch``, ``predict`` and
``drift`` call: it fetches the URI (registry.fetch) and, when the directory is a plain MLflow
model, adopts it once — derives a FeatureSpec (spec.py), converts to ONNX with a parity check
(onnx.py), writes a reference sample when reference data is given — into the local cache, beside
the downloaded model. From then on the directory is a tabserve model like any other: the server
does not know where its spec came from, and the next start reads it without importing MLflow.

The cache is keyed by the model files' checksum and the reference data's: a new ``--reference``
(or a changed local model directory) adopts again; the same ones reuse what is there.

    mlflow_model.py  the MLmodel file: flavour, signature, input example; loading
    inspect.py       what the fitted model knows: task, classes, its encoders' categories
    spec.py          the FeatureSpec and model inputs, each part with its source
    onnx.py          conversion and the parity check on the served path
    importer.py      ``tabserve import``: a pickled/skops/joblib pipeline into the registry
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tabserve import registry
from tabserve.errors import UserError
from tabserve.modeldir import INFO_FILE, MLMODEL_FILE, REFERENCE_FILE, ModelDir
from tabserve.settings import Settings
from tabserve.spec import FILENAME as SPEC_FILE

log = logging.getLogger("tabserve.adoption")

# Bump when what adoption writes changes, so older adoptions are redone.
ADOPTION_VERSION = 1
_TABSERVE_FILES = {SPEC_FILE, INFO_FILE, REFERENCE_FILE, "model.onnx"}


def digest(path: Path) -> str:
    """sha256 over a directory's files (names and bytes), tabserve's own files left out."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _TABSERVE_FILES)
    for file in files:
        h.update(str(file.relative_to(path)).encode())
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve(
    uri: str,
    settings: Settings,
    *,
    reference: Path | None = None,
    target: str | None = None,
) -> ModelDir:
    """A checked tabserve model dir for ``uri``, adopting a plain MLflow model when needed."""
    # Before MLflow loads: registry imports MLflow with pandas hidden (a light resolve), which
    # would leave the flavours an adoption needs half-imported. Only a flag: importing pandas
    # here cost a cached start most of a second for nothing.
    pandas_missing = importlib.util.find_spec("pandas") is None  # the serve install
    if not pandas_missing:
        registry.load_mlflow_whole()
    reference = Path(reference) if reference is not None else None
    fetched = registry.fetch(uri, settings)
    info = fetched.info()
    trained_here = (fetched.path / SPEC_FILE).is_file() and not info.get("adopted")
    if trained_here:
        if reference is not None:
            log.warning("%s was trained by tabserve and carries its training reference; "
                        "--reference is ignored", uri)  # fmt: skip
        fetched.check()
        return fetched
    if not (fetched.path / MLMODEL_FILE).is_file():
        fetched.check()  # says what is missing
    if pandas_missing and not (fetched.path / SPEC_FILE).is_file():
        raise UserError(
            f"{uri} is a plain MLflow model: adopting it (deriving its spec, converting it to "
            "ONNX) needs the training libraries: pip install 'tabserve[train]'"
        )
    in_cache = _is_under(fetched.path, settings.resolved_cache_dir())
    home = fetched.path if in_cache else None
    model_digest = info.get("adopted", {}).get("model_sha256") if home else None
    if home is None or model_digest is None:
        model_digest = digest(fetched.path)
    if home is None:  # a local MLflow model directory: adopt into the cache, keyed by content
        home = settings.resolved_cache_dir() / "local" / model_digest[:32]
    reference_digest = _file_digest(reference) if reference is not None else None
    current = ModelDir(home).info().get("adopted") if (home / SPEC_FILE).is_file() else None
    if (
        current
        and current.get("version") == ADOPTION_VERSION
        and current.get("model_sha256") == model_digest
        and (reference is None or current.get("reference_sha256") == reference_digest)
    ):
        model = ModelDir(home)
        model.check()
        return model
    return adopt(fetched, home, uri, model_digest, reference=reference, target=target,
                 reference_digest=reference_digest)  # fmt: skip


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def adopt(
    source: ModelDir,
    home: Path,
    uri: str,
    model_digest: str,
    *,
    reference: Path | None = None,
    target: str | None = None,
    reference_digest: str | None = None,
) -> ModelDir:
    """Derive spec, ONNX and reference sample for the MLflow model in ``source`` into ``home``.

    Written in a sibling staging directory and swapped in, so a concurrent reader sees the old
    adoption or the new one, never half of one.
    """
    from tabserve.adoption.inspect import inspect
    from tabserve.adoption.mlflow_model import MlflowModel
    from tabserve.adoption.onnx import convert_with_parity
    from tabserve.adoption.spec import derive
    from tabserve.datasets import load_table
    from tabserve.training.artifacts import reference_sample

    started = time.perf_counter()
    log.info("adopting %s (a model tabserve did not train): deriving its FeatureSpec and "
             "converting it to ONNX", uri)  # fmt: skip
    mlmodel = MlflowModel.read(source.path, uri)
    native = mlmodel.load()
    facts = inspect(native)
    frame = load_table(str(reference)) if reference is not None else None
    derived = derive(
        mlmodel, native, facts, uri, frame, str(reference) if reference else None, target
    )
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-adopt-", dir=home.parent))
    try:
        for item in source.path.iterdir():
            if item.name in _TABSERVE_FILES:
                continue
            dest = staging / item.name
            if item.is_dir():
                shutil.copytree(item, dest)
            else:
                shutil.copy2(item, dest)
        derived.spec.save(staging)
        if frame is not None:
            sample = reference_sample(frame, derived.spec)
            (staging / REFERENCE_FILE).write_bytes(orjson.dumps(sample))
        previous = source.info()
        facts_info: dict[str, Any] = {
            **{k: previous[k] for k in ("name", "version", "run_id") if k in previous},
            "task": derived.spec.target.task,
            "flavor": mlmodel.flavor,
            "model_inputs": [m.as_json() for m in derived.inputs],
            "adopted": {
                "version": ADOPTION_VERSION,
                "source": uri,
                "model_sha256": model_digest,
                "reference": str(reference) if reference else None,
                "reference_sha256": reference_digest,
                "estimator": facts.estimator,
            },
        }
        (staging / INFO_FILE).write_bytes(orjson.dumps(facts_info, option=orjson.OPT_INDENT_2))
        staged = ModelDir(staging)
        converted_at = time.perf_counter()
        conversion = convert_with_parity(native, staged, derived.inputs, derived.rows)
        staged.write_info(
            **conversion.info(),
            conversion_s=round(time.perf_counter() - converted_at, 3),
            adoption_s=round(time.perf_counter() - started, 3),
        )
        _swap_in(staging, home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model = ModelDir(home)
    model.check()
    if conversion.ok:
        log.info("adopted %s in %.1f s: ONNX parity on %d rows (max deviation %.1e)", uri,
                 time.perf_counter() - started, conversion.rows_checked,
                 conversion.max_deviation or 0.0)  # fmt: skip
    else:
        log.warning("adopted %s without ONNX (%s): it is served by its native %s runtime",
                    uri, conversion.reason, mlmodel.flavor)  # fmt: skip
    return model


def _swap_in(staging: Path, home: Path) -> None:
    """Replace ``home`` by ``staging``: rename the old aside, rename the new in, drop the old."""
    old = None
    if home.exists():
        old = home.with_name(f".{home.name}-old-{os.getpid()}")
        os.rename(home, old)
    os.rename(staging, home)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["adopt", "digest", "resolve"]
