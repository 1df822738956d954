"""A trade-off front as a table and a plot, its knee, and weighted choices on it.

Objective values come from each plan's float estimate (the columns below). Normalisations, used for
the knee and for weighted choices (`--normalize`):

    range   (v - best) / (worst - best) over the front: 0 at the front's best, 1 at its worst (default)
    max     v / max|v| over the front, negated for maximized objectives (what a weighted CP-SAT
            objective does, there with the largest value of the whole space: `WEIGHTED_SCALE`)
    none    the raw values, negated for maximized objectives

A weighted choice minimises Σ weight_k · normalised_k. For positive weights every minimiser over all
plans lies on the front, so on a complete front the choice is the exact weighted optimum. Under
`max`, an objective whose values sit far from zero compared with their spread (throughput of good
plans within a few per cent of each other) moves the sum much less than one that varies by
multiples (TTFT); `range` weighs each objective by its spread on the front instead.
The knee is the point nearest (Euclidean) to the ideal point under `range`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from autoparallel import objectives
from autoparallel.configs import ServingConfig, TrainingConfig, even_split
from autoparallel.errors import InputError
from autoparallel.plan import ServingPlan, TrainingPlan
from autoparallel.user_file import writable_folder_problem

if TYPE_CHECKING:
    import pandas as pd

Plan = ServingPlan | TrainingPlan
T = TypeVar("T")

SERVING_METRICS: dict[str, tuple[str, bool]] = {
    "throughput": ("throughput (tok/s)", True),
    "ttft": ("TTFT (ms)", False),
    "tpot": ("TPOT (ms)", False),
    "cost": ("$ / M output tokens", False),
    "memory": ("KV headroom (GiB)", True),
}
"""Serving objective -> (axis title, maximized)."""
TRAINING_METRICS: dict[str, tuple[str, bool]] = {
    "throughput": ("tokens/s", True),
    "cost": ("$ per step (GPUs x step time x $/GPU-h)", False),
    "memory": ("headroom on the fullest GPU (GiB)", True),
}
"""Training objective -> (axis title, maximized). `mfu` is `cost` (MFU ∝ 1 / (GPUs × step time))."""
ALIASES = {"headroom": "memory", "mfu": "cost"}
Normalize = Literal["range", "max", "none"]
NORMALIZATIONS = ("range", "max", "none")


def metrics(plan: Plan) -> dict[str, tuple[str, bool]]:
    """The objectives a plan's front may have, with axis titles and directions."""
    return TRAINING_METRICS if isinstance(plan, TrainingPlan) else SERVING_METRICS


def metric(plan: Plan, name: str) -> float:
    """Objective `name` of a plan, in its own units (see the *_METRICS tables)."""
    name = ALIASES.get(name, name)
    if isinstance(plan, TrainingPlan):
        c, p = plan.config, plan.perf
        return float(
            {
                "throughput": p.tokens_per_s,
                "cost": c.world_size * p.step_time_s * plan.cluster.gpu.usd_per_hour / 3600.0,
                "memory": plan.memory.usable_gib - plan.memory.peak_gib,
            }[name]
        )
    return objectives.value(plan.perf, name)


def config_label(plan: Plan) -> str:
    """A point's configuration in a few characters: `tp2 pp1 x4 b64 fp8kv`, `tp2 pp4 dp2 mb1 zdist none
    L13/13/13/9`. A training label names every field of the configuration that is not at its default
    (`training_label`), so that two points of a front never share a label."""
    if isinstance(plan, TrainingPlan):
        return training_label(plan.config, plan.model.num_layers)
    sc = plan.config
    serving = [f"tp{sc.tp}", f"pp{sc.pp}", f"x{sc.replicas}", f"b{sc.max_num_seqs}"]
    if sc.enable_expert_parallel:
        serving.insert(2, "ep")
    if sc.kv_cache_dtype != "auto":
        serving.append(f"{sc.kv_cache_dtype}kv")
    if sc.quantization:
        serving.append(str(sc.quantization))
    if sc.enforce_eager:
        serving.append("eager")
    if sc.gpu_memory_utilization != ServingConfig.model_fields["gpu_memory_utilization"].default:
        serving.append(f"mem{sc.gpu_memory_utilization:g}")
    if plan.engine != "vllm":
        serving.insert(0, plan.engine)
    return " ".join(serving)


def training_label(c: TrainingConfig, num_layers: int) -> str:
    """`tp4 pp4 dp1 mb2 zdist none L13/13/13/9`: tp, pp, dp, micro-batch, ZeRO mode and recompute always;
    the other fields of `TrainingConfig` only where they differ from its defaults (a stage split other
    than the even one, per-stage recompute in stage order, `etp` unlike tp, ...)."""
    parts = [f"tp{c.tp}", f"pp{c.pp}", f"dp{c.dp}"]
    if c.cp > 1:
        parts.append(f"cp{c.cp}" + ("a2a" if c.cp_comm == "a2a" else ""))
    parts += [f"ep{c.ep}"] * (c.ep > 1) + [f"etp{c.etp}"] * (c.etp not in (None, c.tp))
    parts += [f"vp{c.vp}"] * (c.vp > 1) + [f"mb{c.micro_batch}", f"z{c.zero.value}"]
    stages = c.stage_recompute
    parts.append("/".join(r.value for r in stages) if stages is not None else c.recompute.value)
    if c.stage_layers(num_layers) != even_split(num_layers, c.pp):
        parts.append("L" + "/".join(map(str, c.stage_layers(num_layers))))
    flags = [
        ("nosp", not c.sequence_parallel and c.tp > 1),
        ("offload-opt", c.offload_optimizer),
        ("offload-params", c.offload_params),
        (c.precision, c.precision != "bf16"),
        (f"cf{c.moe_capacity_factor or 0:g}", c.moe_capacity_factor is not None),
        ("ep-overlap", c.ep_overlap),
    ]
    return " ".join(parts + [name for name, on in flags if on])


def training_columns(c: TrainingConfig, num_layers: int) -> dict[str, Any]:
    """Every field of the configuration, one column each (the workload's seq_len and global_batch
    aside); sequences as `13/13/13/9`: a row holds the whole configuration, not only its shape."""
    out: dict[str, Any] = {}
    for name, value in c.model_dump(mode="json", exclude={"global_batch", "seq_len"}).items():
        if name == "layers_per_stage":  # the split every stage runs, the even one when none was set
            value = c.stage_layers(num_layers)
        out[name] = "/".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    return out


def plan_columns(plan: Plan) -> dict[str, Any]:
    """The configuration and headline numbers of one point."""
    if isinstance(plan, TrainingPlan):
        c, tp_ = plan.config, plan.perf
        return {
            **training_columns(c, plan.model.num_layers),
            "framework": plan.framework,
            "gpus": c.world_size,
            "step_time_s": tp_.step_time_s,
            "throughput_tok_s": tp_.tokens_per_s,
            "mfu": tp_.mfu,
            "usd_per_hour": plan.cluster.gpu.usd_per_hour * c.world_size,
            "headroom_gib": plan.memory.usable_gib - plan.memory.peak_gib,
        }
    sc, p = plan.config, plan.perf
    gpus = sc.tp * sc.pp * sc.replicas
    return {
        "engine": plan.engine,
        "tp": sc.tp,
        "pp": sc.pp,
        "dp": sc.replicas,
        "ep": sc.tp * sc.replicas if sc.enable_expert_parallel else 1,  # vLLM: experts over tp × dp ranks
        "max_num_seqs": sc.max_num_seqs,
        "max_model_len": sc.max_model_len,
        "max_num_batched_tokens": sc.max_num_batched_tokens,
        # vLLM's knob; SGLang and TensorRT-LLM size their KV pool their own way, and `plan --json` drops
        # it for them (`ServingPlan.to_dict`): empty here too.
        "gpu_memory_utilization": sc.gpu_memory_utilization if plan.engine == "vllm" else None,
        "kv_cache_dtype": sc.kv_cache_dtype,
        "quantization": sc.quantization or "none",
        "enforce_eager": sc.enforce_eager,
        "gpus": gpus,
        "throughput_tok_s": p.output_tokens_per_s,
        "ttft_ms": p.ttft_ms,
        "tpot_ms": p.tpot_ms,
        "usd_per_million_tokens": p.usd_per_million_tokens,
        "usd_per_hour": plan.cluster.gpu.usd_per_hour * gpus,
        "kv_headroom_gib": p.kv_headroom_gib,
        **(
            {
                "batch_at_rate": plan.at_request_rate.batch_size,
                "ttft_ms_at_rate": plan.at_request_rate.ttft_ms,
                "tpot_ms_at_rate": plan.at_request_rate.tpot_ms,
            }
            if plan.at_request_rate is not None
            else {}
        ),
        **(
            {
                "bench_output_tok_s": plan.benchmark.output_tokens_per_s,
                "bench_duration_s": plan.benchmark.duration_s,
                "bench_mean_ttft_ms": plan.benchmark.mean_ttft_ms,
                "bench_mean_tpot_ms": plan.benchmark.mean_tpot_ms,
                "bench_p99_ttft_ms": plan.benchmark.p99_ttft_ms,
                "bench_preemptions": plan.benchmark.preemptions,
            }
            if plan.benchmark is not None
            else {}
        ),
    }


def check_weights(weights: Mapping[str, float], names: tuple[str, ...]) -> dict[str, float]:
    """The weights of a weighted choice among the objectives `names`, keyed by canonical name.

    Raises:
        InputError: a weight for an objective not in `names`, a non-finite or negative weight, or
            none > 0.
    """
    canon = [ALIASES.get(n, n) for n in names]
    w = {ALIASES.get(k, k): float(v) for k, v in weights.items()}
    bad = sorted(set(w) - set(canon))
    if bad:
        raise InputError(
            f"weight for {bad[0]!r}, which is not an objective of this front ({', '.join(canon)})"
        )
    odd = sorted(k for k, v in w.items() if not math.isfinite(v))
    if odd:
        raise InputError(f"weight for {odd[0]!r} is {w[odd[0]]}; a weight is a finite number >= 0")
    if any(v < 0 for v in w.values()) or not any(v > 0 for v in w.values()):
        raise InputError(f"weights must be >= 0 with one > 0, got {dict(weights)}")
    return w


@dataclass
class BaseFront(Generic[T]):
    """Points on a Pareto front (best first on the first objective); subclasses say how to read a point."""

    plans: list[T]
    objectives: tuple[str, ...]
    complete: bool
    """True when the solver proved nothing else is non-dominated."""
    cap: int
    """The most points asked for."""
    solves: int = 0
    wall_s: float = 0.0
    merged: int = 0
    """Solver points dropped because another point is at least as good on every objective in the float
    model (they differed only by the solver's integer rounding, e.g. a few µs of step time)."""

    def __post_init__(self) -> None:
        keep = [i for i in range(len(self.plans)) if not self._dominated(i)]
        self.merged += len(self.plans) - len(keep)
        self.plans = [self.plans[i] for i in keep]

    def _dominated(self, i: int) -> bool:
        """Point i is weakly dominated (in floats) by another point (of lower index, on a tie)."""
        signs = [1.0 if self.maximized(n) else -1.0 for n in self.objectives]
        vals = [
            [s * self.metric(p, n) for s, n in zip(signs, self.objectives, strict=True)] for p in self.plans
        ]

        def at_least(a: list[float], b: list[float]) -> bool:
            return all(x >= y - 1e-9 * max(1.0, abs(y)) for x, y in zip(a, b, strict=True))

        return any(
            j != i and at_least(vals[j], vals[i]) and (j < i or not at_least(vals[i], vals[j]))
            for j in range(len(vals))
        )

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[T]:
        return iter(self.plans)

    def __getitem__(self, i: int) -> T:
        return self.plans[i]

    def metric(self, point: T, name: str) -> float:
        """Objective `name` of one point, in its own units."""
        raise NotImplementedError

    def titles(self) -> dict[str, tuple[str, bool]]:
        """Objective -> (axis title, maximized)."""
        raise NotImplementedError

    def label(self, point: T) -> str:
        """A point's configuration in a few characters."""
        raise NotImplementedError

    def columns(self, point: T) -> dict[str, Any]:
        """The configuration and headline numbers of one point (the table's columns)."""
        raise NotImplementedError

    def group(self, point: T) -> str:
        """The plot series of a point ("": one series)."""
        return ""

    def values(self, name: str) -> list[float]:
        """Objective `name` of every point, in its own units."""
        return [self.metric(p, name) for p in self.plans]

    def title(self, name: str) -> str:
        """The axis title of objective `name`, units included ("KV headroom (GiB)", not "memory")."""
        return self.titles()[ALIASES.get(name, name)][0] if self.plans else name

    def maximized(self, name: str) -> bool:
        """Whether larger values of `name` are better."""
        return self.titles()[ALIASES.get(name, name)][1] if self.plans else False

    def normalized(self, normalize: Normalize = "range") -> list[list[float]]:
        """Per point, each objective normalised (smaller is better; see the module docstring)."""
        if normalize not in NORMALIZATIONS:
            raise InputError(f"unknown normalisation {normalize!r}; choose from {', '.join(NORMALIZATIONS)}")
        cols = []
        for name in self.objectives:
            sign = -1.0 if self.maximized(name) else 1.0
            v = [sign * x for x in self.values(name)]
            if normalize == "range":
                lo, hi = min(v), max(v)
                v = [(x - lo) / (hi - lo) if hi > lo else 0.0 for x in v]
            elif normalize == "max":
                top = max(abs(x) for x in v) or 1.0
                v = [x / top for x in v]
            cols.append(v)
        return [list(row) for row in zip(*cols, strict=True)]

    def knee(self) -> int:
        """Index of the point nearest the ideal point (range-normalised)."""
        rows = self.normalized("range")
        return min(range(len(rows)), key=lambda i: math.hypot(*rows[i]))

    def pick(self, weights: Mapping[str, float], normalize: Normalize = "range") -> int:
        """Index of the point minimising Σ weight · normalised objective.

        Raises:
            InputError: a weight for an objective not on the front, a non-finite or negative weight.
        """
        names = [ALIASES.get(n, n) for n in self.objectives]
        w = check_weights(weights, self.objectives)
        rows = self.normalized(normalize)
        return min(
            range(len(rows)),
            key=lambda i: sum(w.get(n, 0.0) * x for n, x in zip(names, rows[i], strict=True)),
        )

    def rows(self) -> list[dict[str, Any]]:
        """One dict per point: objectives, configuration and headline numbers."""
        knee = self.knee() if self.plans else -1
        return [
            {
                "point": i,
                "label": self.label(p),
                "knee": i == knee,
                **{f"objective_{ALIASES.get(n, n)}": self.metric(p, n) for n in self.objectives},
                **self.columns(p),
            }
            for i, p in enumerate(self.plans)
        ]

    def to_pandas(self) -> pd.DataFrame:
        """The front as a DataFrame, one row per point, each column of its type
        (`results.COLUMN_TYPES`, as a sweep's table and a results file have it)."""
        from autoparallel.sweeps.results import typed_frame

        return typed_frame(self.rows())

    def write(self, path: str | Path) -> None:
        """Save the table as Parquet, CSV or JSON lines (by suffix)."""
        from autoparallel.sweeps.results import write_rows

        write_rows(path, self.rows())

    def plot(self, path: str | Path, *, title: str | None = None) -> int:
        """Save a scatter of the front (2 objectives) or its pairwise panels (3+) as PNG or SVG, the knee
        starred, each point labelled `#i configuration` where that overlaps nothing, else `#i` alone,
        else listed in the caption (`#i` is its row in the front's table). Returns the points drawn per
        panel."""
        return plot_front(self, Path(path), title=title)


@dataclass
class Front(BaseFront[Plan]):
    """Serving or training plans on a Pareto front (best first on the first objective)."""

    def metric(self, point: Plan, name: str) -> float:
        return metric(point, name)

    def titles(self) -> dict[str, tuple[str, bool]]:
        return metrics(self.plans[0])

    def label(self, point: Plan) -> str:
        return config_label(point)

    def columns(self, point: Plan) -> dict[str, Any]:
        return {**plan_columns(point), "solver_status": point.solver.status}


MARKERS = {"": ("o", "tab:blue"), "aggregated": ("o", "tab:blue"), "disaggregated": ("s", "tab:orange")}
"""Plot series -> (marker, colour); other series get the default cycle."""


def _plain(text: str) -> str:
    """`text` as matplotlib draws it literally: a pair of `$` would start mathtext (`$ per step (... x
    $/GPU-h)` was drawn in math italics without its dollars); `\\$` is a literal dollar there."""
    return text.replace("$", r"\$")


LABEL_KEY = "#n: the point's row in the front's table (its # column; `point` in --out)"
"""The plot's caption: what the number in each point label refers to."""
DOT_SIZE, KNEE_SIZE = 28.0, 220.0
"""Marker areas (points²) of a front's points and of its knee star."""
PLOT_DPI = 110
"""The figure's resolution, laid out and saved at it: hinted text is wider than in proportion at a
higher one (a 7-point caption measured 618 px at 100 dpi and 714, not 680, at 110), so what is
measured to fit must be measured at the resolution it is drawn at."""


def _place_labels(
    ax: Any, xs: list[float], ys: list[float], labels: list[str], knee: int, avoid: list[Any]
) -> list[int]:
    """Label the points of one drawn, laid-out panel so that no label overlaps another label, a marker,
    the legend, the `avoid` texts or the panel's edge: each point gets `#i configuration` at the first of a
    few spots around it that is free (the knee first, then the front's order), else just `#i`, else
    nothing. Returns the points that got no label."""
    import numpy as np

    pixels = ax.get_figure(root=True).dpi / 72.0  # per point
    centres = ax.transData.transform(list(zip(xs, ys, strict=True)))
    # extents (x0, y0, x1, y1) in pixels of what is drawn (markers, legend, titles) and of the labels
    # placed; a candidate spot is tested against all at once (a Python loop of Bbox.overlaps over them
    # took 5 of the 7 s of a 200-point, 3-objective plot)
    boxes: list[tuple[float, float, float, float]] = []
    for k, (cx, cy) in enumerate(centres):
        for size in (DOT_SIZE, KNEE_SIZE) if k == knee else (DOT_SIZE,):
            r = math.sqrt(size) / 2 * pixels
            boxes.append((cx - r, cy - r, cx + r, cy + r))
    for artist in (ax.get_legend(), *avoid):
        if artist is not None and artist.get_visible():
            e = artist.get_window_extent()
            boxes.append((e.x0, e.y0, e.x1, e.y1))
    taken = np.array(boxes, dtype=float).reshape(-1, 4)
    frame = ax.bbox
    order = [knee, *(i for i in range(len(xs)) if i != knee)]
    todo = [(i, f"#{i} {labels[i]}") for i in order]
    spots = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
    for short in (False, True):
        missed = []
        for i, text in todo:
            if short:
                text = f"#{i}"
            g = math.sqrt(KNEE_SIZE if i == knee else DOT_SIZE) / 2 + 2  # points off the centre
            note = ax.annotate(
                _plain(text), (xs[i], ys[i]), xytext=(0, 0), textcoords="offset points", fontsize=6, alpha=0.8
            )
            note.set_in_layout(False)
            size = note.get_window_extent()  # measured once: each spot's box follows from its offset
            w, h = size.width, size.height
            cx, cy = centres[i]
            for dx, dy in spots:
                ox, oy = cx + dx * g * pixels, cy + dy * g * pixels
                x0 = ox if dx == 1 else ox - w if dx == -1 else ox - w / 2
                y0 = oy if dy == 1 else oy - h if dy == -1 else oy - h / 2
                box = (x0 - 2.0, y0 - 2.0, x0 + w + 2.0, y0 + h + 2.0)  # pixels: a gap between labels
                inside = (
                    frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
                )
                hits = (
                    (taken[:, 0] < box[2])
                    & (box[0] < taken[:, 2])
                    & (taken[:, 1] < box[3])
                    & (box[1] < taken[:, 3])
                )
                if inside and not hits.any():
                    note.xyann = (dx * g, dy * g)
                    note.set_horizontalalignment({1: "left", 0: "center", -1: "right"}[dx])
                    note.set_verticalalignment({1: "bottom", 0: "center", -1: "top"}[dy])
                    taken = np.vstack([taken, box])
                    break
            else:
                note.remove()
                missed.append((i, text))
        todo = missed
    return sorted(i for i, _ in todo)


def _runs(points: list[int]) -> str:
    """Sorted point numbers as runs: [3, 5, 6, 7] -> "#3, #5-#7"."""
    runs: list[list[int]] = []
    for i in points:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"#{r[0]}" if len(r) == 1 else f"#{r[0]}-#{r[-1]}" for r in runs)


CAPTION_MARGIN = 6.0
"""Points kept free between the caption and each side edge of the figure."""


def _fit_caption(fig: Any, caption: Any) -> None:
    """Wrap `caption` (the figure's centred foot line) at spaces to the figure's width and, when that takes
    more lines than the one the layout left room for, grow the figure at its foot by their height. The
    axes and the other figure texts move up by that height, so every pixel distance among them stays as
    it was: the point labels, placed in pixels against the frozen layout, keep their places by their
    points, and the caption keeps its gap to the panels above it."""
    renderer = fig.canvas.get_renderer()
    before = caption.get_window_extent(renderer).height
    room = fig.bbox.width - 2 * CAPTION_MARGIN * fig.dpi / 72.0
    lines = [""]
    for word in caption.get_text().split(" "):
        trial = f"{lines[-1]} {word}" if lines[-1] else word
        caption.set_text(trial)
        if lines[-1] and caption.get_window_extent(renderer).width > room:
            lines.append(word)
        else:
            lines[-1] = trial
    caption.set_text("\n".join(lines))
    extra = caption.get_window_extent(renderer).height - before  # pixels
    if extra <= 0:
        return
    old = fig.bbox.height
    new = old + extra
    for ax in fig.axes:  # figure fractions: the same pixel box, `extra` higher
        box = ax.get_position(original=True)
        ax.set_position([box.x0, (box.y0 * old + extra) / new, box.width, box.height * old / new])
    for text in fig.texts:  # the titles; the point labels are the panels' (data and offset points)
        if text.get_transform() is not fig.transSubfigure:
            continue
        x, y = text.get_position()
        text.set_position((x, (y * old + (0.0 if text is caption else extra)) / new))
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height * new / old)


def check_plot_path(path: Path) -> None:
    """InputError unless `path` names a .png or .svg file that can be written
    (`user_file.writable_folder_problem`), checked before the front is solved."""
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--plot {str(path)!r}: use a .png or .svg file name")
    if (problem := writable_folder_problem(path)) is not None:
        raise InputError(f"cannot write --plot {str(path)!r}: {problem}")


def plot_front(front: BaseFront[Any], path: Path, *, title: str | None = None) -> int:
    """See `Front.plot`."""
    check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [ALIASES.get(n, n) for n in front.objectives]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    # Constrained layout places the suptitle above the top row of panels (tight_layout left it over
    # them from 4 rows on: 5 objectives, 10 panels).
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.4 * cols, 4.8 * rows), dpi=PLOT_DPI, squeeze=False, layout="constrained"
    )
    knee = front.knee()
    labels = [front.label(p) for p in front.plans]
    groups = [front.group(p) for p in front.plans]
    drawn = 0
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        xs, ys = front.values(a), front.values(b)
        drawn = 0
        for g in dict.fromkeys(groups):
            marker, colour = MARKERS.get(g, ("^", None))
            dots = ax.scatter(
                [x for x, h in zip(xs, groups, strict=True) if h == g],
                [y for y, h in zip(ys, groups, strict=True) if h == g],
                s=DOT_SIZE,
                marker=marker,
                color=colour,
                zorder=2,
                label=_plain(g or "front"),
            )
            drawn += len(dots.get_offsets())
        ax.scatter(
            [xs[knee]],
            [ys[knee]],
            s=KNEE_SIZE,
            marker="*",
            color="tab:red",
            zorder=3,
            label=_plain(f"knee: {labels[knee]}"),
        )
        titles = front.titles()
        ax.set_xlabel(_plain(titles[a][0] + (" ↑" if titles[a][1] else " ↓")))
        ax.set_ylabel(_plain(titles[b][0] + (" ↑" if titles[b][1] else " ↓")))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    status = (
        "complete"
        if front.complete
        else f"cut at {front.cap} points"
        if len(front) + front.merged >= front.cap
        else "not proven complete"
    )
    heading = fig.suptitle(
        _plain(title or f"Pareto front: {' vs '.join(names)} ({len(front)} points, {status})")
    )
    caption = fig.supxlabel(_plain(LABEL_KEY), fontsize=7, color="0.3")
    # Lay the figure out once (constrained layout, legend places), then freeze it: the labels are
    # measured against this layout, so nothing may move when the file is drawn.
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    for ax in list(axes.flat)[: len(pairs)]:
        if (legend := ax.get_legend()) is not None:
            box = legend.get_window_extent().transformed(ax.transAxes.inverted())
            legend.set_loc((box.x0, box.y0))  # "best" would move it again once the labels exist
    unlabelled: set[int] = set()
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        unlabelled.update(
            _place_labels(ax, front.values(a), front.values(b), labels, knee, [heading, caption])
        )
    if unlabelled:
        where = " (in a panel)" if len(pairs) > 1 else ""
        caption.set_text(_plain(f"{LABEL_KEY}; no room to number{where} {_runs(sorted(unlabelled))}"))
    _fit_caption(fig, caption)
    try:
        fig.savefig(path, dpi=PLOT_DPI, metadata={"Description": f"points={len(front)} panels={len(pairs)}"})
    except OSError as exc:
        raise InputError.cannot_write("--plot", path, exc) from None
    finally:
        plt.close(fig)
    return drawn
