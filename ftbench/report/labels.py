"""Point labels that never overlap: each label goes to the first of a few spots
around its point where it overlaps no label placed before and stays inside the
axes; a label with no free spot is left out (the legend still names the point's
strategy). The HTML report's browser test measures the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Offsets (points) from the point to the label's corner, nearest first, and the
# label's alignment at each.
_SPOTS = [((4, 4), "left", "bottom"), ((-4, 4), "right", "bottom"), ((4, -4), "left", "top"),
          ((-4, -4), "right", "top"), ((6, 0), "left", "center"), ((-6, 0), "right", "center"),
          ((0, 7), "center", "bottom"), ((0, -7), "center", "top")]
# Farther spots, joined to their point by a thin line.
_SPOTS += [((dx * d, dy * d), "left" if dx > 0 else "right", "bottom" if dy > 0 else "top")
           for d in (14, 24, 36) for dx, dy in ((1, 1), (-1, 1), (1, -1), (-1, -1))]
_LEADER = {"arrowstyle": "-", "color": "0.6", "lw": 0.6, "shrinkA": 0, "shrinkB": 3}
_GAP = 3.0  # pixels kept between two labels: the browser's font is not matplotlib's


def place_labels(fig: Figure, ax: Axes, points: list[tuple[float, float, str]], fontsize: float = 7) -> int:
    """Annotate `points` (x, y, text) on `ax` without overlaps; return how many were left out.
    Call after everything else is drawn on the figure (the layout must be final)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()  # runs the layout engine, so the axes stay where the labels are measured
    renderer = canvas.get_renderer()
    fig.set_layout_engine("none")  # the labels must not move the axes they were placed on
    inside = ax.get_window_extent(renderer)
    placed = [t.get_window_extent(renderer) for t in ax.texts]
    left_out = 0
    for x, y, text in points:
        for offset, ha, va in _SPOTS:
            far = max(map(abs, offset)) > 10
            label = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize,
                                ha=ha, va=va, arrowprops=_LEADER if far else None)
            label.update_positions(renderer)
            box = Text.get_window_extent(label, renderer)  # the text alone, not its leader line
            fits = (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1)
            if fits and not any(box.expanded(1, 1).padded(_GAP).overlaps(other) for other in placed):
                placed.append(box)
                break
            label.remove()
        else:
            left_out += 1
    return left_out
