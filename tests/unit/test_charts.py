"""The inline SVG bar chart (dashboard/charts.py): a title and description for assistive
technology, a bar per period scaled to the largest, axis labels, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from dashboard.charts import bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def chart(bars: list[tuple[str, Decimal, str]]) -> ET.Element:
    return ET.fromstring(str(bar_chart("c", "Revenue <per day>", "what it shows",
                                       ("Period: day", "Revenue, SEK"), bars)))


def test_one_bar_per_period_scaled_to_the_largest() -> None:
    svg = chart([("2026-03-29", Decimal(4500), "SEK 45.00"),
                 ("2026-03-30", Decimal(9000), "SEK 90.00"),
                 ("2026-03-31", Decimal(0), "SEK 0.00")])
    bars = svg.findall(f"{SVG}rect")
    heights = [float(bar.get("height") or 0) for bar in bars]
    assert len(bars) == 3 and heights[1] == 2 * heights[0] and heights[2] == 0
    assert [bar.find(f"{SVG}title").text for bar in bars] == [  # type: ignore[union-attr]
        "2026-03-29: SEK 45.00", "2026-03-30: SEK 90.00", "2026-03-31: SEK 0.00"]


def test_title_description_and_axis_labels() -> None:
    svg = chart([("2026-03-29", Decimal(1), "1")])
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "c-title c-desc"
    assert svg.find(f"{SVG}title").text == "Revenue <per day>"  # type: ignore[union-attr]
    texts = [t.text for t in svg.findall(f"{SVG}text")]
    assert "Period: day" in texts and "Revenue, SEK" in texts and "2026-03-29" in texts


def test_a_period_of_more_refunds_than_sales_and_an_empty_chart_draw() -> None:
    svg = chart([("a", Decimal(-500), "SEK -5.00"), ("b", Decimal(0), "SEK 0.00")])
    assert [float(b.get("height") or 0) for b in svg.findall(f"{SVG}rect")] == [0, 0]
    assert chart([]).findall(f"{SVG}rect") == []
