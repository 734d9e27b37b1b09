"""What a reader sees in a figure: the bars per legend entry and the tick labels, read off the axes."""
from __future__ import annotations

from matplotlib.container import BarContainer


def _name(ax, container) -> str:
    """The legend entry a reader matches a group of bars with: the one of the bars' colour (seaborn draws
    its own legend patches), else the container's label."""
    leg = ax.get_legend()
    if leg is not None and len(container):
        colour = tuple(round(v, 4) for v in container[0].get_facecolor())
        for handle, text in zip(leg.legend_handles, leg.get_texts()):
            if hasattr(handle, "get_facecolor") and tuple(round(v, 4) for v in handle.get_facecolor()) == colour:
                return text.get_text()
    return container.get_label()


def bars(ax, horizontal: bool = False) -> dict[str, list[float]]:
    """{legend entry: bar lengths in drawing order} (heights, or widths of horizontal bars)."""
    return {_name(ax, c): [round(float(p.get_width() if horizontal else p.get_height()), 6) for p in c]
            for c in ax.containers if isinstance(c, BarContainer)}


def bottoms(ax) -> dict[str, list[float]]:
    return {_name(ax, c): [round(float(p.get_y()), 6) for p in c] for c in ax.containers if isinstance(c, BarContainer)}


def legend(ax) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def xticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def yticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]
