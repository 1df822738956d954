"""The pareto plot's point labels do not pile up (sweeps/front.py `plot_front`): every label was drawn at
a fixed offset from its point, so the labels of close points (the low-throughput end of a serving front,
the long engine lists of a deployment front) merged into a smear. Now each label takes a free spot
around its point or shrinks to its point number `#i`, or is left off and named in the caption; no two
labels overlap, nor the legend or the titles, and every point is still drawn."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoparallel.sweeps.front import BaseFront

NAMES = "abc"


@dataclass
class _Front(BaseFront[dict[str, float]]):
    """A front of made-up points: enough to draw the plot without a solve."""

    def metric(self, point: dict[str, float], name: str) -> float:
        return point[name]

    def titles(self) -> dict[str, tuple[str, bool]]:
        return {"a": ("throughput (tok/s)", True), "b": ("TPOT (ms)", False), "c": ("cost", False)}

    def label(self, point: dict[str, float]) -> str:
        return f"1x tp1 b{int(point['a'])} + 5x tp2ep2 b748"

    def group(self, point: dict[str, float]) -> str:
        return "disaggregated" if int(point["a"]) % 5 == 0 else "aggregated"


def _dense_front(objectives: int) -> _Front:
    """40 mutually non-dominated points, most of them bunched at one end (as a serving front's small
    batches are), two of them on the same spot of the b-c panel."""
    points = [{"a": 100.0 + 7 * i + i**3 / 20, "b": 3.0 + 0.002 * i**3, "c": float(i % 4)} for i in range(40)]
    points[1]["c"] = points[2]["c"]
    return _Front(plans=points, objectives=tuple(NAMES[:objectives]), complete=True, cap=40)


def _plot(front: _Front, path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[dict[str, Any]]]:
    """Plot `front` and measure, per panel, what the saved figure drew."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation

    panels: list[dict[str, Any]] = []
    save = Figure.savefig

    def measure(fig: Figure, *args: Any, **kwargs: Any) -> None:
        save(fig, *args, **kwargs)  # draws: the boxes below are the ones in the file
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        titles = [t for t in (fig._suptitle, fig._supxlabel) if t is not None]  # type: ignore[attr-defined]
        for ax in fig.axes:
            if not ax.get_visible():
                continue
            notes = [t for t in ax.texts if isinstance(t, Annotation)]
            panels.append(
                {
                    "frame": ax.bbox.frozen(),
                    "labels": [(n.get_text(), n.get_window_extent(renderer)) for n in notes],
                    "avoid": [ax.get_legend().get_window_extent(renderer)]  # type: ignore[union-attr]
                    + [t.get_window_extent(renderer) for t in titles],
                    "dots": [
                        np.asarray(c.get_offsets()).shape[0] for c in ax.collections
                    ],  # the series, then the knee
                    "caption": titles[-1].get_text(),
                }
            )

    monkeypatch.setattr(Figure, "savefig", measure)
    return front.plot(path), panels


@pytest.mark.parametrize("objectives", [2, 3])
def test_labels_of_close_points_do_not_overlap(
    tmp_path: Path, objectives: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = _dense_front(objectives)
    drawn, panels = _plot(front, tmp_path / "front.png", monkeypatch)
    assert drawn == len(front) == 40
    assert len(panels) == (1 if objectives == 2 else 3)
    for panel in panels:
        assert sum(panel["dots"][:-1]) == len(front) and panel["dots"][-1] == 1  # every point, the knee
        boxes = [box for _, box in panel["labels"]]
        assert len(boxes) >= 10  # labels are drawn, not all left off
        for i, box in enumerate(boxes):
            assert not any(box.overlaps(other) for other in boxes[i + 1 :]), panel["labels"][i][0]
            assert not any(box.overlaps(other) for other in panel["avoid"]), panel["labels"][i][0]
            frame = panel["frame"]
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


@pytest.mark.parametrize("objectives", [2, 3])
def test_every_point_is_numbered_or_named_in_the_caption(
    tmp_path: Path, objectives: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = _dense_front(objectives)
    _, panels = _plot(front, tmp_path / "front.svg", monkeypatch)
    runs = re.findall(r"#(\d+)(?:-#(\d+))?", panels[0]["caption"].partition("no room")[2])
    missing = {i for lo, hi in runs for i in range(int(lo), int(hi or lo) + 1)}
    labels = [front.label(p) for p in front]
    for panel in panels:
        numbered = [int(m[1]) for text, _ in panel["labels"] if (m := re.match(r"#(\d+)( |$)", text))]
        assert len(numbered) == len(panel["labels"]) == len(set(numbered))  # each label is one point's
        for text, _ in panel["labels"]:
            i = int(text[1:].split(" ")[0])
            assert text in (f"#{i}", f"#{i} {labels[i]}")
        assert set(range(len(front))) - set(numbered) <= missing
    assert missing and len(missing) < len(front)
