"""The pareto plot's title sits above its panels (sweeps/front.py `plot_front`): with 5 objectives (10
panels, 4 rows) `tight_layout` drew the suptitle over the top row. (The file name's prefix is the one this
change's tests were given.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autoparallel.sweeps.front import BaseFront

NAMES = "abcde"


@dataclass
class _Front(BaseFront[dict[str, float]]):
    """A front of made-up points: enough to lay out the panels without a solve."""

    def metric(self, point: dict[str, float], name: str) -> float:
        return point[name]

    def titles(self) -> dict[str, tuple[str, bool]]:
        return {n: (f"objective {n} (units)", i % 2 == 0) for i, n in enumerate(NAMES)}

    def label(self, point: dict[str, float]) -> str:
        return f"tp{int(point['a'])} pp2 dp4 mb2"


@pytest.mark.parametrize("objectives", [4, 5])
def test_the_title_does_not_overlap_a_panel(
    tmp_path: Path, objectives: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # Mutually non-dominated points: "a" rises as "b" falls, both maximized / minimized alike.
    points = [{n: float((i * (j + 2)) % 7 + i) for j, n in enumerate(NAMES)} for i in range(6)]
    for i, p in enumerate(points):
        p["b"] = float(10 - i)
    front = _Front(plans=points, objectives=tuple(NAMES[:objectives]), complete=True, cap=10)
    overlaps: list[Any] = []
    save = Figure.savefig

    def measure(fig: Figure, *args: Any, **kwargs: Any) -> None:
        save(fig, *args, **kwargs)  # draws, so the layout is final
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        title = fig._suptitle.get_window_extent(renderer)  # type: ignore[union-attr]
        panels = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
        overlaps.extend(b for b in panels if b is not None and b.overlaps(title))
        assert title.y1 <= fig.bbox.y1 + 0.5  # and stays on the canvas

    monkeypatch.setattr(Figure, "savefig", measure)
    front.plot(tmp_path / "front.svg")  # vector: no rasterizing, the same layout
    assert not overlaps
