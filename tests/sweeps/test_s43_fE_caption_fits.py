"""The pareto plot's caption fits in the figure (sweeps/front.py `plot_front`): the caption was
lengthened with `no room to number #…` after the layout was frozen and was drawn as one line, cut at
both edges of the image (x = -50 … 690 px on a 640 px figure for Llama-3.1-8B on 8xH100, throughput vs
headroom). Now it is wrapped to the figure's width and the figure grows at its foot by the extra lines,
the panels keeping their pixel places, so every label stays where it was placed by its point."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import autoparallel.sweeps.front as front_module
from autoparallel.sweeps.front import BaseFront


@dataclass
class _Front(BaseFront[dict[str, float]]):
    """Made-up points: enough to draw the plot without a solve."""

    def metric(self, point: dict[str, float], name: str) -> float:
        return point[name]

    def titles(self) -> dict[str, tuple[str, bool]]:
        return {"a": ("throughput (tok/s)", True), "b": ("TPOT (ms)", False)}

    def label(self, point: dict[str, float]) -> str:
        return f"1x tp1 b{int(point['a'])} + 5x tp2ep2 b748"


def _crowded_front() -> _Front:
    """80 non-dominated points bunched at one end: dozens get no label, in many separate runs."""
    points = [{"a": 100.0 + 7 * i + i**3 / 20, "b": 3.0 + 0.002 * i**3} for i in range(80)]
    return _Front(plans=points, objectives=("a", "b"), complete=True, cap=80)


def _offsets(fig: Any) -> list[tuple[str, float, float, float, float]]:
    """Each point label's box in pixels, relative to its point."""
    from matplotlib.text import Annotation

    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        for note in ax.texts:
            if isinstance(note, Annotation):
                x, y = ax.transData.transform(note.xy)
                e = note.get_window_extent(renderer)
                out.append((note.get_text(), e.x0 - x, e.y0 - y, e.x1 - x, e.y1 - y))
    return out


def test_long_caption_is_wrapped_inside_the_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    seen: dict[str, Any] = {}
    fit = getattr(front_module, "_fit_caption", None)

    def record_fit(fig: Figure, caption: Any) -> None:
        seen["before"] = _offsets(fig)
        if fit is not None:
            fit(fig, caption)
        seen["after"] = _offsets(fig)

    if fit is not None:
        monkeypatch.setattr(front_module, "_fit_caption", record_fit)
    save = Figure.savefig

    def measure(fig: Figure, *args: Any, **kwargs: Any) -> None:
        save(fig, *args, **kwargs)  # draws: the boxes below are the ones in the file
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        caption = fig._supxlabel  # type: ignore[attr-defined]
        ax = fig.axes[0]
        seen["figure"] = fig.bbox.frozen()
        seen["dpi"] = (fig.dpi, kwargs.get("dpi", fig.dpi))
        seen["caption_box"] = caption.get_window_extent(renderer)
        seen["caption"] = caption.get_text()
        seen["axes_box"] = ax.get_tightbbox(renderer)
        seen["labelled"] = {int(m[1]) for t in ax.texts if (m := re.match(r"#(\d+)", t.get_text()))}

    monkeypatch.setattr(Figure, "savefig", measure)
    front = _crowded_front()
    front.plot(tmp_path / "front.png")

    # measured at the resolution the file is drawn at: hinted text is wider than in proportion at a
    # higher one, so a caption that fits at 100 dpi can run off a 110 dpi file
    assert seen["dpi"][0] == seen["dpi"][1]
    box, figure = seen["caption_box"], seen["figure"]
    assert figure.x0 <= box.x0 and box.x1 <= figure.x1, (box, figure)
    assert figure.y0 <= box.y0 and box.y1 <= figure.y1, (box, figure)
    assert "\n" in seen["caption"]  # long enough to take two lines
    assert box.y1 < seen["axes_box"].y0  # below the panel, its tick labels and axis title
    # the caption names exactly the points that got no label
    words = " ".join(seen["caption"].split())
    runs = re.findall(r"#(\d+)(?:-#(\d+))?", words.partition("no room to number")[2])
    missing = {i for lo, hi in runs for i in range(int(lo), int(hi or lo) + 1)}
    assert len(missing) >= 20
    assert missing == set(range(len(front))) - seen["labelled"]
    # making room moved no label relative to its point
    assert len(seen["after"]) == len(seen["before"]) >= 10
    for (text, *a), (text2, *b) in zip(seen["before"], seen["after"], strict=True):
        assert text == text2
        assert a == pytest.approx(b, abs=1e-6), text
