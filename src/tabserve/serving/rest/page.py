"""The model page at ``/``: what is served, its contract, a form to try it, its health and drift.

One HTML page written here from the served FeatureSpec (so it is complete before any script
runs), plus one small script and one stylesheet from ``serving/page/`` (package data, no build
step, nothing from another host):

- the model's name, version and runtime, and links to /docs, /redoc, /spec, /metrics;
- the FeatureSpec as a table: kind, dtype, required or nullable, training range or categories
  (with their training shares), the training missing rate, and ``sources`` (where each part of
  the spec came from, for a model tabserve did not train). A feature without a profile or with
  unknown categories says so instead of showing nothing;
- a form with one input per feature, prefilled with typical values, that sends the record to
  ``POST /predict`` exactly as typed (numbers as numbers, the rest as strings, empty fields left
  out) and shows the answer, or each 400 ``details`` entry beside its field. The server is the
  only validator: the page never blocks a value, so what it shows is what a client would get;
- live request rate, latency quantiles and error share, from ``GET /stats`` (a JSON snapshot of
  the server's own counters, metrics_snapshot.py) polled every 2 s;
- the latest drift/quality summary from ``GET /report`` (report_summary.py), when one exists.

/stats and /report are API routes (in the OpenAPI document, ``OPENAPI_PATHS``); the page and its
assets are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import orjson

import tabserve
from tabserve.serving import metrics_snapshot
from tabserve.serving.errors import NotFound
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.report_summary import NoReport, ReportReader, report_path
from tabserve.serving.rest.assets import asset_route, html_page
from tabserve.serving.state import ServerState
from tabserve.spec import (
    BooleanProfile,
    CategoricalProfile,
    Feature,
    FeatureSpec,
    NumericProfile,
    Scalar,
)

ASSET_PREFIX = "/assets/page"
_DIR = Path(__file__).resolve().parent.parent / "page"
_FILES = {"page.js": _DIR / "page.js", "page.css": _DIR / "page.css"}
# Categories listed in the table and offered in the form; the rest are counted.
SHOWN_CATEGORIES = 12


def asset_files() -> Mapping[str, Path]:
    return _FILES


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def _input_text(value: Scalar | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _missing_share(f: Feature) -> str:
    p = f.profile
    if p is None or not p.count:
        return "—"
    return f"{100 * p.missing / p.count:.1f} %"


def _categories(f: Feature) -> list[tuple[str, int | None]]:
    """Known categories, most frequent first when the profile counts them."""
    if isinstance(f.profile, CategoricalProfile) and f.profile.categories:
        counts = f.profile.categories
        return [(c, counts[c]) for c in sorted(counts, key=lambda c: -counts[c])]
    return [(c, None) for c in f.categories or []]


def _profile_cell(f: Feature) -> str:
    p = f.profile
    if f.kind == "categorical":
        if f.categories is None:
            return '<span class="muted">categories unknown: any value passes to the model</span>'
        cats = _categories(f)
        total = sum(n for _, n in cats if n) or 0
        items = []
        for c, n in cats[:SHOWN_CATEGORIES]:
            share = f" <small>{100 * n / total:.0f} %</small>" if n and total else ""
            items.append(f"<code>{escape(c)}</code>{share}")
        more = len(cats) - SHOWN_CATEGORIES
        tail = f" <small>and {more} more</small>" if more > 0 else ""
        return ", ".join(items) + tail
    if isinstance(p, NumericProfile):
        median = p.quantiles.get("0.5")
        mid = f"median {_num(median)}, " if median is not None else ""
        return (
            f"{_num(p.min)} … {_num(p.max)} <small>({mid}mean {_num(p.mean)}, "
            f"std {_num(p.std)})</small>"
        )
    if isinstance(p, BooleanProfile):
        n = (p.true + p.false) or 1
        return f"true {100 * p.true / n:.0f} %, false {100 * p.false / n:.0f} %"
    if p is None:
        return '<span class="muted">no training profile (no reference data)</span>'
    return "—"


def _spec_table(spec: FeatureSpec) -> str:
    rows = []
    for f in spec.features:
        need = (
            '<span class="tag opt">nullable</span>'
            if f.nullable
            else '<span class="tag req">required</span>'
        )
        rows.append(
            f"<tr><th scope=row><code>{escape(f.name)}</code></th><td>{f.kind}</td>"
            f"<td><code>{f.dtype}</code></td><td>{need}</td><td>{_profile_cell(f)}</td>"
            f"<td class=num>{_missing_share(f)}</td></tr>"
        )
    return (
        '<table id="spec-table"><thead><tr><th>feature</th><th>kind</th><th>dtype</th>'
        "<th>in a request</th><th>training range / categories</th><th>missing in training</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _hint(f: Feature) -> str:
    p = f.profile
    if f.kind == "numeric":
        if isinstance(p, NumericProfile):
            return f"{f.dtype}, training range {_num(p.min)} … {_num(p.max)}"
        return f"{f.dtype}, no training range known"
    if f.kind == "boolean":
        return "true or false"
    if f.categories is None:
        return "categories unknown: any value passes"
    shown = ", ".join(c for c, _ in _categories(f)[:5])
    more = len(f.categories) - 5
    return f"one of {shown}" + (f" (+{more})" if more > 0 else "")


def _field(i: int, f: Feature) -> str:
    fid, hid, eid = f"f-{i}", f"h-{i}", f"e-{i}"
    value = escape(_input_text(f.typical_value()))
    name = escape(f.name)
    tag = "nullable" if f.nullable else "required"
    described = f'aria-describedby="{hid} {eid}"'
    if f.kind == "boolean":
        typical = f.typical_value()
        options = [("", "(missing)")] if f.nullable else []
        options += [("true", "true"), ("false", "false")]
        opts = "".join(
            f'<option value="{v}"{" selected" if v == _input_text(typical) else ""}>{t}</option>'
            for v, t in options
        )
        control = f'<select id="{fid}" name="{name}" {described}>{opts}</select>'
    else:
        extra = ' inputmode="decimal"' if f.kind == "numeric" else ""
        datalist = ""
        if f.kind == "categorical" and f.categories:
            extra += f' list="l-{i}"'
            opts = "".join(
                f'<option value="{escape(c)}"></option>'
                for c, _ in _categories(f)[: SHOWN_CATEGORIES * 4]
            )
            datalist = f'<datalist id="l-{i}">{opts}</datalist>'
        control = (
            f'<input id="{fid}" name="{name}" type="text" value="{value}" '
            f'autocomplete="off" spellcheck="false"{extra} {described}>{datalist}'
        )
    return (
        f'<div class="field" data-feature="{name}">'
        f'<label for="{fid}"><code>{name}</code> <span class="tag {tag[:3]}">{tag}</span></label>'
        f'{control}<p class="hint" id="{hid}">{escape(_hint(f))}</p>'
        f'<p class="error" id="{eid}" role="alert" hidden></p></div>'
    )


def _sources(spec: FeatureSpec) -> str:
    if not spec.sources:
        return "<p>Trained by tabserve: every part of the spec comes from the training data.</p>"
    items = "".join(
        f"<li><b>{escape(part)}</b>: {escape(source)}</li>" for part, source in spec.sources.items()
    )
    return f'<ul id="spec-sources">{items}</ul>'


def _excluded(spec: FeatureSpec) -> str:
    if not spec.excluded:
        return ""
    items = "".join(
        f"<li><code>{escape(c.name)}</code>: {escape(c.reason)}</li>" for c in spec.excluded
    )
    return f"<h3>Left out of the model</h3><ul>{items}</ul>"


def _page_data(spec: FeatureSpec) -> str:
    data = {
        "features": [
            {"name": f.name, "kind": f.kind, "dtype": f.dtype, "nullable": f.nullable}
            for f in spec.features
        ],
        "task": spec.target.task,
        "target": spec.target.name,
        "classes": [str(c) for c in spec.target.classes or []],
    }
    # In a <script type="application/json"> block (data, never run): "<" escaped so no value
    # can close the element.
    return orjson.dumps(data).decode().replace("<", "\\u003c")


# The live panel's cards: element id, label, unit line (page.js fills the values).
_CARDS = (
    ("live-rate", "prediction requests", "per second"),
    ("live-p50", "latency p50", "ms"),
    ("live-p99", "latency p99", "ms"),
    ("live-errors", "errors", "4xx / 5xx"),
    ("live-inflight", "in flight", "requests"),
    ("live-total", "served so far", "prediction requests"),
)


def _live_cards() -> str:
    return "".join(
        f'<div class="card"><span class="label">{label}</span><b id="{cid}">&ndash;</b>'
        f'<small id="{cid}-detail">{unit}</small></div>'
        for cid, label, unit in _CARDS
    )


def render(state: ServerState) -> str:
    plane = state.plane
    spec = plane.spec if plane is not None else state.spec
    if plane is not None:
        title = escape(plane.model_name)
        status = '<span class="chip ok" id="status">ready</span>'
        facts = (
            f'version <b id="model-version">{escape(plane.model_version)}</b> · runtime '
            f'<b id="model-runtime">{escape(plane.runtime.name)}</b>'
        )
    else:
        title = "tabserve"
        state_text = "failed to load" if state.load_error else "loading"
        status = f'<span class="chip bad" id="status">{state_text}</span>'
        facts = escape(state.load_error or "the model is loading; this page shows its spec")
    t = spec.target
    target = f"<code>{escape(t.name)}</code> — {t.task}"
    if t.classes:
        target += ", classes " + ", ".join(f"<code>{escape(str(c))}</code>" for c in t.classes)
    fields = "".join(_field(i, f) for i, f in enumerate(spec.features))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — tabserve</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASSET_PREFIX.lstrip("/")}/page.css">
</head><body>
<header><div><h1 id="model-name">{title}</h1><p class="facts">{facts} {status}</p></div>
<nav><a href="docs">API docs</a><a href="redoc">ReDoc</a><a href="spec">spec</a>
<a href="metrics">metrics</a><a href="openapi.json">openapi.json</a></nav></header>
<main>
<section id="live" aria-labelledby="live-h"><h2 id="live-h">Live <small id="live-window"></small>
</h2>
<div class="cards">{_live_cards()}</div>
<svg id="spark" viewBox="0 0 600 60" preserveAspectRatio="none" role="img"
 aria-label="request rate, last minutes"></svg>
<div class="twocol"><div><h3>Predictions by class</h3><div id="live-classes" class="bars"></div>
</div><div><h3>Rejected values</h3><div id="live-validation"></div><h3>Prediction log</h3>
<p id="live-log">&ndash;</p></div></div>
</section>
<section id="try" aria-labelledby="try-h"><h2 id="try-h">Try it <small>POST /predict</small></h2>
<form id="predict-form" novalidate><div class="fields">{fields}</div>
<div class="actions"><button type="submit" id="predict-button">Predict</button>
<button type="button" id="reset-button" class="secondary">Typical values</button></div></form>
<div id="result" aria-live="polite"></div>
<details><summary>request body</summary><pre id="request-body"></pre></details>
</section>
<section id="contract" aria-labelledby="contract-h"><h2 id="contract-h">Contract
<small>FeatureSpec</small></h2>
<p>Target {target}. {len(spec.features)} features.</p>
{_spec_table(spec)}
<h3>Where the spec came from</h3>{_sources(spec)}{_excluded(spec)}
</section>
<section id="drift" aria-labelledby="drift-h"><h2 id="drift-h">Drift and quality
<small>latest report</small></h2><div id="drift-body"><p class="muted">loading…</p></div>
</section>
</main>
<footer>tabserve {escape(tabserve.__version__)}</footer>
<script type="application/json" id="page-data">{_page_data(spec)}</script>
<script src="{ASSET_PREFIX.lstrip("/")}/page.js"></script>
</body></html>"""


def routes(state: ServerState) -> list[Route]:
    reader = ReportReader(report_path(state.settings))
    # The page is rewritten when the plane changes (a hot reload) or the model finishes loading.
    cache: dict[str, Any] = {"key": None, "body": ""}

    async def page(call: Call) -> Reply:
        key = (id(state.plane), id(state.spec), state.load_error)
        if cache["key"] != key:
            cache.update(key=key, body=render(state))
        return html_page(cache["body"])

    async def stats(call: Call) -> Reply:
        plane = state.plane
        served = (plane.model_name, plane.model_version) if plane is not None else ("", "")
        snap = metrics_snapshot.snapshot(*served, log_enabled=state.prediction_log is not None)
        return Reply(orjson.dumps(snap))

    async def report(call: Call) -> Reply:
        plane = state.plane
        model = plane.model_name if plane is not None else ""
        try:
            return Reply(orjson.dumps(reader.summary(model)))
        except NoReport as exc:
            raise NotFound(str(exc)) from None

    return [
        Route("/", page, in_schema=False),
        Route("/stats", stats),
        Route("/report", report),
        asset_route(ASSET_PREFIX, asset_files),
    ]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COUNT = {"type": "number"}
_STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "model",
        "version",
        "time",
        "prediction_routes",
        "in_flight",
        "requests",
        "latency",
        "predictions",
        "validation_errors",
        "ood_warnings",
        "shed",
        "prediction_log",
    ],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "string"},
        "time": {"type": "number", "description": "server time, Unix seconds"},
        "prediction_routes": {"type": "array", "items": {"type": "string"}},
        "in_flight": _COUNT,
        "requests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["route", "status", "count"],
                "properties": {
                    "route": {"type": "string"},
                    "status": {"type": "string"},
                    "count": _COUNT,
                },
            },
        },
        "latency": {
            "type": "object",
            "description": "per route: the request duration histogram (seconds), cumulative",
            "additionalProperties": {
                "type": "object",
                "required": ["count", "sum", "buckets"],
                "properties": {
                    "count": _COUNT,
                    "sum": _COUNT,
                    "buckets": {
                        "type": "array",
                        "description": "[upper bound (null: +Inf), cumulative count]",
                        "items": {"type": "array", "items": {"type": ["number", "null"]}},
                    },
                },
            },
        },
        "predictions": {"type": "object", "additionalProperties": _COUNT},
        "validation_errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason", "count"],
                "properties": {
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                    "count": _COUNT,
                },
            },
        },
        "ood_warnings": {"type": "object", "additionalProperties": _COUNT},
        "shed": {"type": "object", "additionalProperties": _COUNT},
        "prediction_log": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
    },
}
_REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["dataset_drift", "features", "generated_at"],
    "properties": {
        "model": {"type": ["string", "null"]},
        "version": {"type": ["string", "null"]},
        "generated_at": {"type": ["string", "null"]},
        "window": {"type": ["object", "null"]},
        "rows": {"type": ["object", "null"]},
        "dataset_drift": {"type": ["boolean", "null"]},
        "drifted_features": {"type": ["integer", "null"]},
        "tested_features": {"type": ["integer", "null"]},
        "prediction_drift": {"type": ["object", "null"]},
        "features": {"type": "array", "items": {"type": "object"}},
        "more_features": {"type": "integer"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "quality": {"description": "model quality from ground truth, when the report has it"},
    },
}

# Merged into the OpenAPI document by rest/ops.py.
OPENAPI_PATHS: dict[str, Any] = {
    "/stats": {
        "get": {
            "summary": "The server's own counters as JSON (cumulative; the model page polls it)",
            "tags": ["operations"],
            "responses": {"200": _json(_STATS_SCHEMA, "A snapshot of /metrics")},
        }
    },
    "/report": {
        "get": {
            "summary": "Summary of the latest drift/quality report (drift.json in "
            "TABSERVE_REPORT_DIR, else TABSERVE_HOME)",
            "tags": ["operations"],
            "responses": {
                "200": _json(_REPORT_SCHEMA, "The latest report's summary"),
                "404": _json({"$ref": "#/components/schemas/Error"}, "No report for this model"),
            },
        }
    },
}
