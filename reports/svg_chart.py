"""A horizontal bar chart as inline SVG: no script, no file, nothing fetched, readable in any browser.

>>> svg = bar_chart("Response (ms)", [("risk", 12.5), ("<ml>", 1500.0)], unit="ms")
>>> svg.startswith("<svg") and "&lt;ml&gt;" in svg and "1500 ms" in svg
True
"""
from __future__ import annotations

from html import escape

ROW, LABEL_W, BAR_W, VALUE_W = 20, 170, 360, 90


def bar_chart(title: str, values: list[tuple[str, float]], *, unit: str, limit: float | None = None) -> str:
    top = max([limit or 0.0, *(v for _, v in values)]) or 1.0
    height = ROW * (len(values) + 1) + 6
    width = LABEL_W + BAR_W + VALUE_W
    rows = []
    for i, (name, value) in enumerate(values):
        y = ROW * (i + 1)
        length = max(1.0, BAR_W * value / top)
        rows.append(f"<text x='{LABEL_W - 6}' y='{y + 14}' text-anchor='end'>{escape(name)}</text>"
                    f"<rect x='{LABEL_W}' y='{y + 3}' width='{length:.1f}' height='{ROW - 6}' fill='#1f5f99'/>"
                    f"<text x='{LABEL_W + length + 4:.1f}' y='{y + 14}'>{value:g} {escape(unit)}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' role='img' width='{width}' height='{height}' "
            f"font-family='sans-serif' font-size='12' fill='#111'><title>{escape(title)}</title>"
            f"<text x='0' y='14' font-weight='bold'>{escape(title)}</text>{''.join(rows)}</svg>")
