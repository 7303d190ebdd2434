"""Whether a newly registered version takes the ``champion`` alias.

The incumbent is scored again on this training's test split with the config's metric, so both
sides are measured on the same rows. When that is impossible (its features are not in this
data), the metric value recorded on its version is used if it is the same metric; otherwise the
incumbent stays and the message says how to promote by hand. A tie keeps the incumbent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabserve import registry
from tabserve.settings import Settings
from tabserve.training.evaluation import better

if TYPE_CHECKING:
    import pandas as pd

ALIAS = "champion"


@dataclass
class Decision:
    moved: bool
    incumbent: str | None
    incumbent_score: float | None
    message: str


def _score_incumbent(
    name: str, version: str, test: pd.DataFrame, metric: str, settings: Settings
) -> float | None:
    """The incumbent's metric on ``test``, answered by its own runtime (None when it cannot be
    evaluated on this data: other features, other labels, another task)."""
    from tabserve.training.evaluation import evaluate_model_dir

    model_dir = registry.resolve(f"models:/{name}/{version}", settings)
    spec = model_dir.spec()
    if any(column not in test.columns for column in [*spec.names, spec.target.name]):
        return None
    try:
        return evaluate_model_dir(model_dir, test).get(metric)
    except Exception:  # an incompatible incumbent: fall back to its recorded metric
        return None


def _recorded(name: str, version: str, metric: str, settings: Settings) -> float | None:
    client = registry.client(settings)
    tags = client.get_model_version(name, version).tags or {}
    if tags.get(registry.TAG_METRIC_NAME) != metric:
        return None
    try:
        return float(tags[registry.TAG_METRIC_VALUE])
    except (KeyError, ValueError):
        return None


def decide(
    name: str,
    new_version: str,
    new_score: float,
    metric: str,
    test: pd.DataFrame,
    settings: Settings,
) -> Decision:
    """Move the alias to ``new_version`` only if it strictly beats the incumbent."""
    incumbent = registry.current_alias_version(name, ALIAS, settings)
    if incumbent is None:
        registry.promote(name, new_version, ALIAS, settings)
        return Decision(True, None, None, f"no champion yet: version {new_version} is champion")
    score = _score_incumbent(name, incumbent, test, metric, settings)
    how = "re-scored on this test split"
    if score is None:
        score = _recorded(name, incumbent, metric, settings)
        how = "as recorded at its registration"
    if score is None:
        return Decision(
            False,
            incumbent,
            None,
            f"champion stays version {incumbent}: it cannot be scored on {metric} with this data "
            f"(promote by hand: tabserve models promote {name} {new_version})",
        )
    if better(metric, new_score, score):
        registry.promote(name, new_version, ALIAS, settings)
        return Decision(
            True,
            incumbent,
            score,
            f"version {new_version} is the new champion: test {metric} {new_score:.4f} beats "
            f"version {incumbent}'s {score:.4f} ({how})",
        )
    verb = "ties" if new_score == score else "does not beat"
    return Decision(
        False,
        incumbent,
        score,
        f"champion stays version {incumbent}: version {new_version}'s test {metric} "
        f"{new_score:.4f} {verb} its {score:.4f} ({how})",
    )
