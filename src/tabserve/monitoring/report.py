"""The drift report: one self-contained HTML page (inline CSS and SVG) and its JSON twin.

The page opens with the verdict (dataset drift or not, how many features drifted, prediction
drift), then the model's quality from ground truth (how many predictions had feedback, the
scores overall and by day), then a table of every feature sorted by severity, then one card
per feature with the overlaid distributions and the numbers behind the verdict. Nothing is
fetched from the network. Both files are written whole and renamed into place, so a reader (the
model page, a cron job's consumer) never sees half a report.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import orjson

from tabserve.monitoring import stats
from tabserve.monitoring.charts import CURRENT_COLOR, REFERENCE_COLOR, distribution_svg
from tabserve.monitoring.drift import ColumnDrift, DriftResult
from tabserve.monitoring.quality import Quality

# ---- JSON --------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def column_dict(col: ColumnDrift) -> dict[str, Any]:
    r = col.result
    return {
        "name": col.name,
        "kind": col.kind,
        "test": r.test if r else None,
        "test_label": stats.TEST_LABELS[r.test] if r else None,
        "value": stats.as_jsonable(r.value) if r else None,
        "threshold": r.threshold if r else None,
        "drifted": col.drifted,
        "severity": stats.as_jsonable(col.severity) if r else None,
        "psi": stats.as_jsonable(col.psi),
        "psi_threshold": stats.PSI_THRESHOLD,
        "n_reference": col.n_reference,
        "n_current": col.n_current,
        "missing_reference": col.missing_reference,
        "missing_current": col.missing_current,
        "missing_changed": col.missing_changed,
        "new_categories": col.new_categories,
        "note": col.note,
    }


def to_dict(result: DriftResult) -> dict[str, Any]:
    return {
        "model": result.model_name,
        "version": result.model_version,
        "window": {"since": _iso(result.since), "until": _iso(result.until)},
        "generated_at": _iso(result.generated_at),
        "rows": {"current": result.n_current, "reference": result.n_reference},
        "versions_seen": result.versions_seen,
        "dataset_drift": result.dataset_drift,
        "drifted_features": result.n_drifted,
        "tested_features": len(result.tested),
        "share_drifted": result.share_drifted,
        "drift_share_threshold": stats.DRIFT_SHARE,
        "prediction_drift": column_dict(result.prediction) if result.prediction else None,
        "features": [column_dict(c) for c in result.features],
        "quality": result.quality.to_dict() if result.quality is not None else None,
        "notes": result.notes,
    }


def to_json(result: DriftResult) -> bytes:
    return orjson.dumps(to_dict(result), option=orjson.OPT_INDENT_2)


DASH = "\u2013"  # an en dash for empty cells

# ---- HTML --------------------------------------------------------------------------------------

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f5f7fa;color:#1f2933;font:14px/1.5 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 12px}
.sub{color:#616e7c;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:14px 16px}
.card .k{color:#616e7c;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:650;margin-top:2px}
.card .d{color:#616e7c;font-size:12px}
.bad{color:#c62828}.good{color:#2e7d32}.warn{color:#b26a00}
.verdict.bad{background:#fdecea;border-color:#f5c2c0}
.verdict.good{background:#edf7ee;border-color:#c3e6c5}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e7eb;
border-radius:10px;overflow:hidden}
th,td{padding:8px 10px;text-align:left;border-bottom:1px solid #eef1f4;font-size:13px}
th{background:#f8fafc;color:#52606d;font-weight:600;font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:none}
a{color:#1f5fa8;text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600}
.badge.bad{background:#fdecea;color:#c62828}.badge.good{background:#edf7ee;color:#2e7d32}
.badge.na{background:#eef1f4;color:#616e7c}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
.feature{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:14px 16px}
.feature.drifted{border-left:4px solid #c62828}
.feature h3{margin:0;font-size:15px;display:flex;justify-content:space-between;gap:8px}
.feature .meta{color:#616e7c;font-size:12px;margin:2px 0 8px}
.facts{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12px;color:#3e4c59;margin-top:6px}
.facts b{font-weight:600;color:#1f2933}
.legend{font-size:12px;color:#52606d;margin:0 0 10px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 12px;
vertical-align:-1px}
.notes{background:#fff8e6;border:1px solid #f3d38a;border-radius:10px;padding:10px 14px;
margin-top:16px;font-size:13px}
footer{color:#7b8794;font-size:12px;margin-top:32px}
"""


def _fmt(value: float | None, p_value: bool = False) -> str:
    if value is None:
        return DASH
    if not math.isfinite(value):
        return "∞"
    if p_value and value == 0:
        return "≈ 0"
    if p_value and value < 1e-4:
        return f"{value:.1e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.3g}"


def _badge(col: ColumnDrift) -> str:
    if col.result is None:
        return "<span class='badge na'>not tested</span>"
    return (
        "<span class='badge bad'>drift</span>"
        if col.drifted
        else "<span class='badge good'>no drift</span>"
    )


def _comparison(col: ColumnDrift) -> str:
    r = col.result
    if r is None:
        return DASH
    op = ("≤" if r.test == "ks" else "<") if r.is_p_value else "≥"
    return f"drift if {op} {r.threshold:g}"


def _missing(col: ColumnDrift) -> str:
    text = f"{col.missing_reference:.1%} → {col.missing_current:.1%}"
    return f"<span class='warn'>{text}</span>" if col.missing_changed else text


def _new_categories(col: ColumnDrift) -> str:
    if not col.new_categories:
        return DASH
    items = sorted(col.new_categories.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{escape(k)} ({v})" for k, v in items[:4])
    more = f" +{len(items) - 4} more" if len(items) > 4 else ""
    return f"<span class='warn'>{shown}{more}</span>"


def _row(col: ColumnDrift) -> str:
    r = col.result
    return (
        f"<tr><td><a href='#f-{escape(col.name)}'>{escape(col.name)}</a></td>"
        f"<td>{col.kind}</td><td>{stats.TEST_LABELS[r.test] if r else DASH}</td>"
        f"<td class='num'>{_fmt(r.value if r else None, bool(r and r.is_p_value))}</td>"
        f"<td>{_comparison(col)}</td><td>{_badge(col)}</td>"
        f"<td class='num'>{_fmt(col.psi)}</td><td>{_missing(col)}</td>"
        f"<td>{_new_categories(col)}</td></tr>"
    )


def _feature_card(col: ColumnDrift) -> str:
    r = col.result
    chart = distribution_svg(col.distribution) if col.distribution else ""
    facts = [
        f"<span>{stats.TEST_LABELS[r.test]}: <b>{_fmt(r.value, r.is_p_value)}</b> "
        f"({_comparison(col)})</span>"
        if r
        else f"<span>{escape(col.note or 'not tested')}</span>",
        f"<span>PSI: <b>{_fmt(col.psi)}</b></span>",
        f"<span>rows: <b>{col.n_reference:,}</b> ref · <b>{col.n_current:,}</b> current</span>",
        f"<span>missing: <b>{_missing(col)}</b></span>",
    ]
    if col.new_categories:
        facts.append(f"<span>new categories: <b>{_new_categories(col)}</b></span>")
    return (
        f"<section class='feature{' drifted' if col.drifted else ''}' id='f-{escape(col.name)}'>"
        f"<h3><span>{escape(col.name)}</span>{_badge(col)}</h3>"
        f"<div class='meta'>{col.kind}</div>{chart}"
        f"<div class='facts'>{''.join(facts)}</div></section>"
    )


def _summary(result: DriftResult) -> str:
    drift = result.dataset_drift
    verdict = "Dataset drift" if drift else "No dataset drift"
    pred = result.prediction
    if pred is None or pred.result is None:
        pred_v, pred_d, pred_cls = "n/a", "no reference predictions", ""
    else:
        pred_v = "Drift" if pred.drifted else "No drift"
        pred_d = f"{stats.TEST_LABELS[pred.result.test]} {_fmt(pred.result.value, True)}"
        pred_cls = "bad" if pred.drifted else "good"
    return (
        "<div class='cards'>"
        f"<div class='card verdict {'bad' if drift else 'good'}'><div class='k'>Verdict</div>"
        f"<div class='v {'bad' if drift else 'good'}'>{verdict}</div>"
        f"<div class='d'>drift when ≥ {stats.DRIFT_SHARE:.0%} of features drift</div></div>"
        f"<div class='card'><div class='k'>Drifted features</div>"
        f"<div class='v'>{result.n_drifted} / {len(result.tested)}</div>"
        f"<div class='d'>{result.share_drifted:.0%} of tested features</div></div>"
        f"<div class='card'><div class='k'>Prediction drift</div>"
        f"<div class='v {pred_cls}'>{pred_v}</div><div class='d'>{escape(pred_d)}</div></div>"
        f"<div class='card'><div class='k'>Rows compared</div>"
        f"<div class='v'>{result.n_current:,}</div>"
        f"<div class='d'>logged, against {result.n_reference:,} reference rows</div></div>"
        "</div>"
    )


def _window(result: DriftResult) -> str:
    def show(m: datetime | None) -> str:
        return m.strftime("%Y-%m-%d %H:%M UTC") if m else "…"

    return f"{show(result.since)} → {show(result.until)}"


METRIC_LABELS = {"accuracy": "Accuracy", "f1": "F1", "roc_auc": "ROC AUC", "rmse": "RMSE",
                 "mae": "MAE"}  # fmt: skip


def _quality(quality: Quality | None) -> str:
    if quality is None:
        return ""
    covered = (
        f"{quality.n_with_feedback:,} of {quality.n_predictions:,} predictions had feedback "
        f"({quality.coverage:.1%})"
    )
    if quality.overall is None:
        return (
            "<h2>Quality (ground truth)</h2><div class='notes'>No ground truth for the "
            f"window's predictions yet: {covered}. Send it with <code>POST /feedback</code> or "
            "<code>tabserve feedback FILE</code>.</div>"
        )
    cards = []
    for name in quality.metrics:
        value = quality.overall.get(name)
        detail = {"f1": quality.f1_average or "", "roc_auc": "one-vs-rest, macro"
                  if quality.task == "classification" and quality.f1_average == "macro"
                  else ""}.get(name, "")  # fmt: skip
        cards.append(
            f"<div class='card'><div class='k'>{METRIC_LABELS[name]}</div>"
            f"<div class='v'>{_fmt(value)}</div><div class='d'>{escape(detail)}</div></div>"
        )
    cards.append(
        "<div class='card'><div class='k'>With feedback</div>"
        f"<div class='v'>{quality.n_with_feedback:,}</div>"
        f"<div class='d'>of {quality.n_predictions:,} predictions ({quality.coverage:.1%})"
        "</div></div>"
    )
    head = "".join(f"<th>{METRIC_LABELS[m]}</th>" for m in quality.metrics)
    rows = "".join(
        f"<tr><td>{escape(day['date'])}</td><td class='num'>{day['predictions']:,}</td>"
        f"<td class='num'>{day['n']:,}</td>"
        + "".join(f"<td class='num'>{_fmt(day.get(m))}</td>" for m in quality.metrics)
        + "</tr>"
        for day in quality.by_day
    )
    fed = quality.feedback
    joined = (
        f"Feedback items read: {fed['read']:,} — joined by the server's request id "
        f"{fed['by_request_id']:,}, by the client's X-Request-ID {fed['by_client_request_id']:,}; "
        f"ambiguous {fed['ambiguous']:,}; no prediction of this model in the window "
        f"{fed['unmatched']:,}."
    )
    notes = "".join(f"<br>{escape(n)}" for n in quality.notes)
    return (
        "<h2>Quality (ground truth)</h2>"
        f"<div class='cards' id='quality'>{''.join(cards)}</div>"
        f"<p class='legend'>{escape(covered)}. {escape(joined)}{notes}</p>"
        "<table id='quality-by-day'><thead><tr><th>Day (UTC)</th><th>Predictions</th>"
        f"<th>With feedback</th>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def render_html(result: DriftResult) -> str:
    version = result.model_version
    shown_version = f"v{version}" if version.isdigit() else f"({version})"
    title = f"Drift report · {result.model_name} {shown_version}"
    columns = [*result.features] + ([result.prediction] if result.prediction else [])
    notes = (
        "<div class='notes'>" + "<br>".join(escape(n) for n in result.notes) + "</div>"
        if result.notes
        else ""
    )
    legend = (
        f"<p class='legend'>Share of rows per bin or category:<span class='sw' "
        f"style='background:{REFERENCE_COLOR}'></span>reference (training sample)"
        f"<span class='sw' style='background:{CURRENT_COLOR}'></span>current (logged)</p>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f"<p class='sub'>Logged inputs {_window(result)} compared with the training reference."
        f" Generated {result.generated_at.strftime('%Y-%m-%d %H:%M UTC')}.</p>"
        f"{_summary(result)}{notes}{_quality(result.quality)}"
        "<h2>Features by severity</h2><table><thead><tr><th>Feature</th><th>Type</th>"
        "<th>Test</th><th>Score</th><th>Rule</th><th>Verdict</th><th>PSI</th>"
        "<th>Missing (ref → cur)</th><th>New categories</th></tr></thead><tbody>"
        + "".join(_row(c) for c in columns)
        + "</tbody></table><h2>Distributions</h2>"
        + legend
        + "<div class='grid'>"
        + "".join(_feature_card(c) for c in columns)
        + "</div><footer>Tests and thresholds follow Evidently's defaults: reference ≤ 1000 "
        "rows: Kolmogorov-Smirnov (numeric), chi-square or Z-test (categorical), p-value 0.05; "
        "larger references: Wasserstein distance normed by the reference std (numeric) or "
        "Jensen-Shannon distance (categorical), threshold 0.1. PSI is shown for context "
        "(0.1 = notable shift). Generated by tabserve.</footer></main></body></html>"
    )


def _write_whole(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_bytes(data)
    os.replace(part, path)


def write_reports(result: DriftResult, html_path: Path | None, json_path: Path | None) -> None:
    if html_path is not None:
        _write_whole(html_path, render_html(result).encode("utf-8"))
    if json_path is not None:
        _write_whole(json_path, to_json(result))
