"""The dashboard's charts: drawn on the server by pygal as SVG, put inline in the page.

The app's Content-Security-Policy allows no script, and pygal always embeds one (its
tooltips' configuration), so every script element and event attribute is taken out of the SVG
after rendering; values are printed on the bars instead of shown by tooltips. Labels (section
names) pass through pygal's XML writer, which escapes them.
"""

from __future__ import annotations

from typing import Any

import pygal
from lxml import etree
from pygal.style import Style

from digest.service.stats import EditionStats

_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#57606a",
    foreground_strong="#1b1f23",
    foreground_subtle="#d0d7de",
    colors=("#0b5d3b", "#b42318", "#9a6700", "#57606a", "#3fb27f"),
    font_family="-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
    value_font_size=12,
    label_font_size=12,
    title_font_size=15,
)
_SVG = "{http://www.w3.org/2000/svg}"


def _options(title: str, **more: Any) -> dict[str, Any]:
    return {
        "title": title,
        "style": _STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": True,
        "width": 720,
        "height": 300,
        "print_values": True,
        "show_legend": False,
        "margin": 16,
        **more,
    }


def inert_svg(svg: str) -> str:
    """The SVG without any script element, event handler attribute or external reference."""
    root = etree.fromstring(svg.encode("utf-8"))
    for node in list(root.iter()):
        if not isinstance(node.tag, str):
            continue
        if node.tag in (f"{_SVG}script", "script"):
            parent = node.getparent()
            if parent is not None:
                parent.remove(node)
            continue
        for name in list(node.attrib):
            local = name.rsplit("}", 1)[-1].lower()
            value = node.attrib[name].strip().lower()
            if local.startswith("on") or (local == "href" and not value.startswith("#")):
                del node.attrib[name]
    return etree.tostring(root, encoding="unicode")


def sends_over_time(stats: EditionStats) -> str:
    minutes = int(stats.interval.total_seconds() // 60)
    chart = pygal.Bar(
        **_options(
            f"Messages accepted per {minutes} minute{'s' if minutes != 1 else ''} (UTC)",
            x_label_rotation=30,
            show_minor_x_labels=False,
            print_values=len(stats.sends_over_time) <= 20,
        )
    )
    labels = [start.strftime("%H:%M") for start, _ in stats.sends_over_time]
    chart.x_labels = labels
    chart.x_labels_major = labels[:: max(1, len(labels) // 10)]
    chart.add("accepted", [n for _, n in stats.sends_over_time])
    return inert_svg(chart.render(is_unicode=True))


def outcomes(stats: EditionStats) -> str:
    chart = pygal.HorizontalBar(**_options("Outcomes", height=260))
    rows = [
        ("delivered", stats.delivered),
        ("hard bounces", stats.hard_bounces),
        ("soft bounces", stats.soft_bounces),
        ("failed", stats.failed),
        ("complaints", stats.complaints),
        ("unsubscribes", stats.unsubscribes),
        ("readers who clicked", stats.readers),
    ]
    chart.x_labels = [label for label, _ in rows]
    chart.add("recipients", [n for _, n in rows])
    return inert_svg(chart.render(is_unicode=True))


def clicks_per_section(stats: EditionStats) -> str:
    chart = pygal.Bar(
        **_options(
            "Click-through per section (readers who clicked / delivered, %)",
            value_formatter=lambda v: f"{v:.1f}%",
        )
    )
    chart.x_labels = [s.name for s in stats.sections]
    chart.add("click-through", [round(100 * s.rate, 1) for s in stats.sections])
    return inert_svg(chart.render(is_unicode=True))


def edition_charts(stats: EditionStats) -> dict[str, str]:
    """Each chart of the edition's page, by name, as inline SVG."""
    return {
        "sends": sends_over_time(stats),
        "outcomes": outcomes(stats),
        "sections": clicks_per_section(stats),
    }
