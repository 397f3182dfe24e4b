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
          ((-4, -4), "right", "top"), ((0, 7), "center", "bottom"), ((0, -7), "center", "top"),
          ((10, 12), "left", "bottom"), ((-10, 12), "right", "bottom"), ((10, -12), "left", "top"),
          ((-10, -12), "right", "top")]
_GAP = 3.0  # pixels kept between two labels: the browser's font is not matplotlib's


def place_labels(fig: Figure, ax: Axes, points: list[tuple[float, float, str]], fontsize: float = 7) -> int:
    """Annotate `points` (x, y, text) on `ax` without overlaps; return how many were left out.
    Call after everything else is drawn on the figure (the layout must be final)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()  # runs the layout engine, so the axes stay where the labels are measured
    renderer = canvas.get_renderer()
    fig.set_layout_engine("none")  # the labels must not move the axes they were placed on
    inside = ax.get_window_extent(renderer)
    placed = [t.get_window_extent(renderer) for t in ax.texts]
    left_out = 0
    for x, y, text in points:
        for offset, ha, va in _SPOTS:
            label = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize,
                                ha=ha, va=va)
            box = label.get_window_extent(renderer)
            fits = (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1)
            if fits and not any(box.expanded(1, 1).padded(_GAP).overlaps(other) for other in placed):
                placed.append(box)
                break
            label.remove()
        else:
            left_out += 1
    return left_out
