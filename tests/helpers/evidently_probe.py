"""Run inside a separate venv that has Evidently: print its drift verdicts for given columns.

Input (argv[1], JSON): {"frames": [{name: {"kind": "num"|"cat", "reference": [...],
"current": [...]}}, ...]}. Output (stdout, JSON): one result per frame, {name: {"stattest": ...,
"score": ..., "drifted": ...}, "__dataset__": {"share": ..., "drift": ...}}. Not a test module:
the monitoring tests run it with that venv's interpreter (Evidently imports once for all frames).
"""

import json
import sys

import pandas as pd
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping
from evidently.legacy.report import Report


def drift_of(spec: dict) -> dict:
    ref = pd.DataFrame({name: c["reference"] for name, c in spec.items()})
    cur = pd.DataFrame({name: pd.Series(c["current"]) for name, c in spec.items()})
    mapping = ColumnMapping(
        numerical_features=[n for n, c in spec.items() if c["kind"] == "num"],
        categorical_features=[n for n, c in spec.items() if c["kind"] == "cat"],
    )
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur, column_mapping=mapping)
    table = next(m for m in report.as_dict()["metrics"] if m["metric"] == "DataDriftTable")
    res = table["result"]
    out = {
        name: {
            "stattest": col["stattest_name"],
            "score": col["drift_score"],
            "drifted": col["drift_detected"],
        }
        for name, col in res["drift_by_columns"].items()
    }
    out["__dataset__"] = {"share": res["share_of_drifted_columns"], "drift": res["dataset_drift"]}
    return out


def main() -> None:
    with open(sys.argv[1]) as fh:
        frames = json.load(fh)["frames"]
    print(json.dumps([drift_of(frame) for frame in frames]))


if __name__ == "__main__":
    main()
