"""Inline SVG charts for the drift report: no JavaScript, no network, readable when printed.

Numeric features: the reference and current histograms overlaid on shared bins. Categorical
features: one row per category with a reference bar above a current bar. Shares, not counts,
so windows of any size compare with the reference at a glance.
"""

from __future__ import annotations

from html import escape

from tabserve.monitoring.drift import Distribution

REFERENCE_COLOR = "#4c78a8"
CURRENT_COLOR = "#f58518"
AXIS_COLOR = "#9aa5b1"
TEXT_COLOR = "#52606d"
FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif' font-size='11'"


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def _num(value: float) -> str:
    return f"{value:.4g}"


def histogram_svg(dist: Distribution, width: int = 520, height: int = 190) -> str:
    """Overlaid histograms (reference filled, current outlined) on the same bins."""
    assert dist.edges is not None
    left, right, top, bottom = 44, 10, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(dist.reference)
    peak = max([*dist.reference, *dist.current, 1e-12])
    bar_w = plot_w / n
    parts = [
        f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
        f"xmlns='http://www.w3.org/2000/svg' {FONT}>"
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(
            f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='#e4e7eb' stroke-width='1'/>"
            f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end' fill='{TEXT_COLOR}'>"
            f"{_pct(peak * frac)}</text>"
        )
    for i, (ref, cur) in enumerate(zip(dist.reference, dist.current, strict=True)):
        x = left + i * bar_w
        label = escape(dist.labels[i])
        ref_h, cur_h = plot_h * ref / peak, plot_h * cur / peak
        parts.append(
            f"<rect x='{x + 0.5:.1f}' y='{top + plot_h - ref_h:.1f}' width='{bar_w - 1:.1f}' "
            f"height='{ref_h:.1f}' fill='{REFERENCE_COLOR}' fill-opacity='0.45'>"
            f"<title>{label}: reference {_pct(ref)}, current {_pct(cur)}</title></rect>"
            f"<rect x='{x + 0.5:.1f}' y='{top + plot_h - cur_h:.1f}' width='{bar_w - 1:.1f}' "
            f"height='{cur_h:.1f}' fill='{CURRENT_COLOR}' fill-opacity='0.35' "
            f"stroke='{CURRENT_COLOR}' stroke-width='1.2'>"
            f"<title>{label}: reference {_pct(ref)}, current {_pct(cur)}</title></rect>"
        )
    base = top + plot_h
    parts.append(
        f"<line x1='{left}' x2='{width - right}' y1='{base}' y2='{base}' stroke='{AXIS_COLOR}'/>"
    )
    lo, hi = dist.edges[0], dist.edges[-1]
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        x = left + plot_w * frac
        parts.append(
            f"<text x='{x:.1f}' y='{base + 16}' text-anchor='{anchor}' fill='{TEXT_COLOR}'>"
            f"{_num(lo + (hi - lo) * frac)}{'+' if frac == 1.0 and dist.tail_clipped else ''}"
            "</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def category_bars_svg(dist: Distribution, width: int = 520) -> str:
    """One row per category: the reference bar over the current bar, shares written beside."""
    label_w, value_w, row_h, bar_h = 130, 96, 30, 10
    bar_space = width - label_w - value_w - 10
    peak = max([*dist.reference, *dist.current, 1e-12])
    height = row_h * len(dist.labels) + 6
    parts = [
        f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
        f"xmlns='http://www.w3.org/2000/svg' {FONT}>"
    ]
    for i, (label, ref, cur) in enumerate(
        zip(dist.labels, dist.reference, dist.current, strict=True)
    ):
        y = 4 + i * row_h
        text = label if len(label) <= 18 else label[:17] + "…"
        ref_w, cur_w = bar_space * ref / peak, bar_space * cur / peak
        parts.append(
            f"<text x='{label_w - 8}' y='{y + bar_h + 5}' text-anchor='end' "
            f"fill='#1f2933'>{escape(text)}<title>{escape(label)}</title></text>"
            f"<rect x='{label_w}' y='{y}' width='{max(ref_w, 0.5):.1f}' height='{bar_h}' rx='2' "
            f"fill='{REFERENCE_COLOR}' fill-opacity='0.8'/>"
            f"<rect x='{label_w}' y='{y + bar_h + 2}' width='{max(cur_w, 0.5):.1f}' "
            f"height='{bar_h}' rx='2' fill='{CURRENT_COLOR}' fill-opacity='0.85'/>"
            f"<text x='{width - value_w}' y='{y + bar_h - 1}' fill='{REFERENCE_COLOR}'>"
            f"{_pct(ref)}</text>"
            f"<text x='{width - value_w}' y='{y + 2 * bar_h + 1}' fill='{CURRENT_COLOR}'>"
            f"{_pct(cur)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def distribution_svg(dist: Distribution) -> str:
    return histogram_svg(dist) if dist.edges is not None else category_bars_svg(dist)
