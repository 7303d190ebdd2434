// The model page's behaviour (rest/page.py writes the HTML): the try-it form, the live panel
// and the drift summary. Plain JS, no library, no build step; every URL is relative to the page,
// so it works behind a path prefix. The server is the only validator: values are sent as typed.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const $ = (id) => document.getElementById(id);
  const form = $("predict-form");
  const fields = Array.from(form.querySelectorAll(".field"));
  const byName = new Map(fields.map((el) => [el.dataset.feature, el]));
  const initial = new Map(fields.map((el) => [el.dataset.feature, control(el).value]));
  const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

  function control(field) {
    return field.querySelector("input, select");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  // ---- the form ---------------------------------------------------------------------------

  // The JSON value for what was typed: numbers for numeric features (and numeric categories),
  // booleans from the select, strings otherwise. A value that is not a number is sent as the
  // string it is, so the server names the problem (wrong_type) exactly as a client would see it.
  function valueOf(feature, text) {
    if (feature.kind === "boolean") return text === "true";
    const numeric = feature.kind === "numeric" || feature.dtype === "int64" ||
      feature.dtype === "float64";
    if (numeric && NUMBER.test(text)) return Number(text);
    return text;
  }

  function record() {
    const out = {};
    for (const feature of data.features) {
      const text = control(byName.get(feature.name)).value.trim();
      if (text === "") continue; // left out: the server says "missing" unless it is nullable
      out[feature.name] = valueOf(feature, text);
    }
    return out;
  }

  function clearErrors() {
    for (const field of fields) {
      const err = field.querySelector(".error");
      err.hidden = true;
      err.textContent = "";
      field.classList.remove("invalid");
      control(field).removeAttribute("aria-invalid");
    }
  }

  function showFieldError(name, message) {
    const field = byName.get(name);
    if (!field) return false;
    const err = field.querySelector(".error");
    err.textContent = err.textContent ? err.textContent + " " + message : message;
    err.hidden = false;
    field.classList.add("invalid");
    control(field).setAttribute("aria-invalid", "true");
    return true;
  }

  function fmtProb(p) {
    return (100 * p).toFixed(p >= 0.995 || p < 0.005 ? 2 : 1) + " %";
  }

  function showAnswer(answer, ms) {
    const result = $("result");
    result.replaceChildren();
    result.className = "ok";
    const head = el("p", { class: "prediction" }, data.target + " = ",
      el("b", { id: "prediction-value" }, String(answer.prediction)));
    head.append(el("small", {}, `  model ${answer.model}, version ${answer.version}, answered in ${ms} ms`));
    result.append(head);
    if (answer.probabilities) {
      const bars = el("div", { class: "bars", id: "prediction-probabilities" });
      const entries = Object.entries(answer.probabilities).sort((a, b) => b[1] - a[1]);
      for (const [label, p] of entries) bars.append(bar(label, p, fmtProb(p)));
      result.append(bars);
    }
    for (const w of answer.warnings || []) {
      result.append(el("p", { class: "warning" }, "warning: " + w));
    }
  }

  function showError(status, body) {
    const result = $("result");
    result.replaceChildren();
    result.className = "bad";
    const line = body && body.error ? body.error : `the server answered ${status}`;
    result.append(el("p", { class: "error-line", id: "error-line" }, `${status}: ${line}`));
    const general = [];
    for (const d of (body && body.details) || []) {
      const text = d.message || d.reason;
      if (d.field == null || !showFieldError(d.field, text)) general.push(text);
    }
    if (general.length) {
      const list = el("ul", { id: "general-errors" });
      for (const g of general) list.append(el("li", {}, g));
      result.append(list);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const body = JSON.stringify(record());
    $("request-body").textContent = body;
    const button = $("predict-button");
    button.disabled = true;
    const started = performance.now();
    try {
      const response = await fetch("predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const ms = (performance.now() - started).toFixed(1);
      let answer = null;
      try { answer = await response.json(); } catch (e) { answer = null; }
      if (response.ok && answer) showAnswer(answer, ms);
      else showError(response.status, answer);
    } catch (e) {
      showError("no answer", { error: "the server did not answer (" + e.message + ")" });
    } finally {
      button.disabled = false;
      form.dataset.done = String(Number(form.dataset.done || 0) + 1);
    }
  });

  $("reset-button").addEventListener("click", () => {
    clearErrors();
    for (const field of fields) control(field).value = initial.get(field.dataset.feature);
  });

  // ---- live panel: two snapshots of the server's counters make a rate ------------------------

  function bar(label, share, text) {
    const row = el("div", { class: "bar" });
    const fill = el("span", { class: "fill" });
    fill.style.width = Math.max(0, Math.min(100, 100 * share)).toFixed(1) + "%";
    row.append(el("span", { class: "bar-label" }, label), el("span", { class: "track" }, fill),
      el("span", { class: "bar-value" }, text));
    return row;
  }

  // Prometheus' histogram_quantile on the difference of two cumulative bucket lists.
  function quantile(q, buckets) {
    if (!buckets.length) return null;
    const total = buckets[buckets.length - 1][1];
    if (total <= 0) return null;
    const rank = q * total;
    let prevLe = 0, prevCount = 0;
    for (const [le, count] of buckets) {
      if (count >= rank) {
        if (le === null) return prevLe; // in the +Inf bucket: the highest finite bound
        if (count === prevCount) return le;
        return prevLe + (le - prevLe) * (rank - prevCount) / (count - prevCount);
      }
      prevLe = le === null ? prevLe : le;
      prevCount = count;
    }
    return prevLe;
  }

  function sumBuckets(snap) {
    const merged = new Map();
    for (const route of snap.prediction_routes) {
      const h = snap.latency[route];
      if (!h) continue;
      for (const [le, n] of h.buckets) merged.set(le, (merged.get(le) || 0) + n);
    }
    return Array.from(merged.entries()).sort((a, b) =>
      (a[0] === null ? Infinity : a[0]) - (b[0] === null ? Infinity : b[0]));
  }

  function totals(snap) {
    const routes = new Set(snap.prediction_routes);
    let all = 0, client = 0, server = 0;
    for (const r of snap.requests) {
      if (!routes.has(r.route)) continue;
      all += r.count;
      if (r.status.startsWith("4")) client += r.count;
      if (r.status.startsWith("5")) server += r.count;
    }
    return { all, client, server, buckets: sumBuckets(snap) };
  }

  const history = [];
  let previous = null;

  function fmtMs(seconds) {
    if (seconds === null) return "–";
    const ms = 1000 * seconds;
    return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
  }

  function drawSpark() {
    const svg = $("spark");
    const max = Math.max(1, ...history.map((h) => h.rate));
    const n = 60;
    const pts = history.slice(-n).map((h, i, arr) => {
      const x = (600 * (i + n - arr.length)) / (n - 1);
      return `${x.toFixed(1)},${(58 - (54 * h.rate) / max).toFixed(1)}`;
    });
    svg.replaceChildren();
    if (pts.length > 1) {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", pts.join(" "));
      svg.append(line);
    }
  }

  function renderLive(snap) {
    const now = totals(snap);
    $("live-inflight").textContent = String(Math.max(0, Math.round(snap.in_flight)));
    $("live-total").textContent = now.all.toLocaleString();
    if (previous) {
      const dt = Math.max(1e-3, snap.time - previous.time);
      const before = totals(previous);
      const n = now.all - before.all;
      const delta = now.buckets.map(([le, c], i) => [le, c - ((before.buckets[i] || [0, 0])[1])]);
      $("live-rate").textContent = (n / dt).toFixed(n / dt < 10 ? 1 : 0);
      $("live-p50").textContent = n > 0 ? fmtMs(quantile(0.5, delta)) : "–";
      $("live-p99").textContent = n > 0 ? fmtMs(quantile(0.99, delta)) : "–";
      const bad = now.client - before.client + now.server - before.server;
      $("live-errors").textContent = n > 0 ? ((100 * bad) / n).toFixed(1) + " %" : "–";
      $("live-errors-detail").textContent =
        `4xx ${now.client - before.client}, 5xx ${now.server - before.server} in ${dt.toFixed(1)} s`;
      $("live-window").textContent = `over the last ${dt.toFixed(1)} s`;
      history.push({ rate: n / dt });
      if (history.length > 120) history.shift();
      drawSpark();
    }
    const classes = $("live-classes");
    classes.replaceChildren();
    const preds = Object.entries(snap.predictions);
    const all = preds.reduce((s, [, v]) => s + v, 0);
    for (const [label, count] of preds) {
      const share = all ? count / all : 0;
      classes.append(bar(label, share, `${count.toLocaleString()} · ${(100 * share).toFixed(0)} %`));
    }
    if (!preds.length) classes.append(el("p", { class: "muted" }, "none yet"));
    const validation = $("live-validation");
    validation.replaceChildren();
    const rejected = snap.validation_errors.slice(0, 6);
    if (!rejected.length) validation.append(el("p", { class: "muted" }, "none yet"));
    else {
      const list = el("ul", {});
      for (const v of rejected) list.append(el("li", {}, `${v.field}: ${v.reason} × ${v.count}`));
      validation.append(list);
    }
    const log = snap.prediction_log;
    if (log.db_up === undefined) $("live-log").textContent = "off (--log-db off)";
    else {
      $("live-log").textContent = `${log.db_up ? "database up" : "DATABASE DOWN (spooling)"}, ` +
        `${(log.rows_written_total || 0).toLocaleString()} rows written, ` +
        `${log.queue_rows || 0} queued, spool ${log.spool_bytes || 0} bytes`;
    }
    previous = snap;
  }

  async function poll() {
    try {
      const response = await fetch("stats", { cache: "no-store" });
      if (response.ok) renderLive(await response.json());
    } catch (e) {
      $("live-window").textContent = "(the server did not answer)";
    }
  }

  // ---- drift and quality ------------------------------------------------------------------

  function fmtValue(v) {
    return typeof v === "number" ? (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(3)) : "–";
  }

  function renderQuality(quality, into) {
    // The report's quality block (monitoring/quality.py): scores by name, and how many of the
    // window's predictions had ground truth fed back.
    into.append(el("h3", {}, "Quality (from ground truth)"));
    if (typeof quality.with_feedback === "number") {
      const share = quality.predictions ? ` (${(100 * quality.coverage).toFixed(1)} %)` : "";
      into.append(el("p", { class: "muted", id: "drift-coverage" },
        `${quality.with_feedback} of ${quality.predictions} predictions had feedback${share}`));
    }
    const overall = quality.overall || {};
    const names = quality.metrics || Object.keys(overall);
    const rows = names.filter((k) => k !== "n" && typeof overall[k] === "number");
    if (!rows.length) {
      into.append(el("p", { class: "muted" }, quality.overall ? "no score computable" :
        "no ground truth yet: POST /feedback or tabserve feedback FILE"));
      return;
    }
    const label = { accuracy: "accuracy", f1: "F1", roc_auc: "ROC AUC", rmse: "RMSE", mae: "MAE" };
    const list = el("ul", { id: "drift-quality" });
    for (const k of rows) list.append(el("li", {}, `${label[k] || k}: ${fmtValue(overall[k])}`));
    into.append(list);
  }

  // "2026-12-01T22:45:30.071038+00:00" → "2026-12-01 22:45:30" (the report's times are UTC).
  function fmtTime(iso) {
    return iso ? iso.replace("T", " ").slice(0, 19) : null;
  }

  async function loadReport() {
    const into = $("drift-body");
    let response;
    try {
      response = await fetch("report", { cache: "no-store" });
    } catch (e) {
      return;
    }
    const body = await response.json().catch(() => null);
    into.replaceChildren();
    if (!response.ok || !body) {
      into.append(el("p", { class: "muted", id: "drift-missing" },
        (body && body.error) || "no report"));
      return;
    }
    const verdict = body.dataset_drift ? "DATASET DRIFT" : "no dataset drift";
    const head = el("p", { class: body.dataset_drift ? "verdict bad" : "verdict ok", id: "drift-verdict" },
      `${verdict}: ${body.drifted_features ?? "?"}/${body.tested_features ?? "?"} features drifted`);
    into.append(head);
    const pd = body.prediction_drift;
    const facts = [
      `generated ${fmtTime(body.generated_at) || "?"} UTC`,
      body.window ? `window ${fmtTime(body.window.since) || "start"} → ` +
        `${fmtTime(body.window.until) || "now"}` : "",
      body.rows ? `${body.rows.current} logged rows vs ${body.rows.reference} reference rows` : "",
      pd ? `prediction drift: ${pd.drifted ? "yes" : "no"}` : "",
    ].filter(Boolean);
    into.append(el("p", { class: "muted" }, facts.join(" · ")));
    const table = el("table", { id: "drift-table" });
    table.append(el("thead", {}, el("tr", {}, el("th", {}, "feature"), el("th", {}, "drifted"),
      el("th", {}, "test"), el("th", {}, "value"), el("th", {}, "threshold"), el("th", {}, "PSI"))));
    const tbody = el("tbody", {});
    for (const f of body.features) {
      tbody.append(el("tr", { class: f.drifted ? "drifted" : "" }, el("td", {}, f.name),
        el("td", {}, f.drifted ? "yes" : "no"), el("td", {}, f.test_label || f.note || "–"),
        el("td", { class: "num" }, fmtValue(f.value)), el("td", { class: "num" }, fmtValue(f.threshold)),
        el("td", { class: "num" }, fmtValue(f.psi))));
    }
    table.append(tbody);
    into.append(table);
    if (body.more_features) into.append(el("p", { class: "muted" }, `and ${body.more_features} more`));
    if (body.quality) renderQuality(body.quality, into);
    for (const note of body.notes || []) into.append(el("p", { class: "muted" }, note));
  }

  poll();
  setInterval(poll, 2000);
  loadReport();
  setInterval(loadReport, 30000);
})();
