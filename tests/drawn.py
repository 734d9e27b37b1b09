"""What a reader sees in a figure: the bars per legend entry and the tick labels, read off the axes."""
from __future__ import annotations

from matplotlib.container import BarContainer


def bars(ax, horizontal: bool = False) -> dict[str, list[float]]:
    """{legend label: bar lengths in drawing order} (heights, or widths of horizontal bars)."""
    return {c.get_label(): [round(float(p.get_width() if horizontal else p.get_height()), 6) for p in c]
            for c in ax.containers if isinstance(c, BarContainer)}


def bottoms(ax) -> dict[str, list[float]]:
    return {c.get_label(): [round(float(p.get_y()), 6) for p in c] for c in ax.containers if isinstance(c, BarContainer)}


def legend(ax) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def xticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def yticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]
