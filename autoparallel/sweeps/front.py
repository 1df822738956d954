"""A trade-off front as a table and a plot, its knee, and weighted choices on it.

Objective values come from each plan's float estimate (the columns below). Normalisations, used for
the knee and for weighted choices (`--normalize`):

    range   (v - best) / (worst - best) over the front: 0 at the front's best, 1 at its worst (default)
    max     v / max|v| over the front, negated for maximized objectives (what a weighted CP-SAT
            objective does, there with the largest value of the whole space: `WEIGHTED_SCALE`)
    none    the raw values, negated for maximized objectives

A weighted choice minimises Σ weight_k · normalised_k. For positive weights every minimiser over all
plans lies on the front, so on a complete front the choice is the exact weighted optimum. Under
`max`, an objective whose values sit far from zero (throughput ~1e4 tok/s, spread 10 %) moves the
sum much less than one that spans its whole range: that is why {"throughput": 1, "ttft": 1} picks the
lowest-TTFT plan; `range` weighs each objective by its spread on the front instead.
The knee is the point nearest (Euclidean) to the ideal point under `range`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from autoparallel.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from autoparallel.plan import ServingPlan

METRICS: dict[str, tuple[str, str, bool]] = {
    "throughput": ("output_tokens_per_s", "throughput (tok/s)", True),
    "ttft": ("ttft_ms", "TTFT (ms)", False),
    "tpot": ("tpot_ms", "TPOT (ms)", False),
    "cost": ("usd_per_million_tokens", "$ / M output tokens", False),
    "memory": ("kv_headroom_gib", "KV headroom (GiB)", True),
}
"""Objective name -> (perf key, axis title, maximized)."""
ALIASES = {"headroom": "memory"}
Normalize = Literal["range", "max", "none"]
NORMALIZATIONS = ("range", "max", "none")


def config_label(plan: ServingPlan) -> str:
    """A point's configuration in a few characters: `tp2 pp1 x4 b64 fp8kv`."""
    c = plan.config
    parts = [f"tp{c.tp}", f"pp{c.pp}", f"x{c.replicas}", f"b{c.max_num_seqs}"]
    if c.enable_expert_parallel:
        parts.insert(2, "ep")
    if c.kv_cache_dtype != "auto":
        parts.append(f"{c.kv_cache_dtype}kv")
    if c.quantization:
        parts.append(str(c.quantization))
    if c.enforce_eager:
        parts.append("eager")
    return " ".join(parts)


@dataclass
class Front:
    """Serving plans on a Pareto front (best first on the first objective)."""

    plans: list[ServingPlan]
    objectives: tuple[str, ...]
    complete: bool
    """True when the solver proved nothing else is non-dominated."""
    cap: int
    """The most points asked for."""
    solves: int = 0
    wall_s: float = 0.0

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[ServingPlan]:
        return iter(self.plans)

    def __getitem__(self, i: int) -> ServingPlan:
        return self.plans[i]

    def values(self, name: str) -> list[float]:
        """Objective `name` of every point, in its own units."""
        key = METRICS[ALIASES.get(name, name)][0]
        return [float(p.perf[key]) for p in self.plans]

    def normalized(self, normalize: Normalize = "range") -> list[list[float]]:
        """Per point, each objective normalised (smaller is better; see the module docstring)."""
        if normalize not in NORMALIZATIONS:
            raise InputError(f"unknown normalisation {normalize!r}; choose from {', '.join(NORMALIZATIONS)}")
        cols = []
        for name in self.objectives:
            sign = -1.0 if METRICS[ALIASES.get(name, name)][2] else 1.0
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
            InputError: a weight for an objective not on the front, or a negative weight.
        """
        names = [ALIASES.get(n, n) for n in self.objectives]
        w = {ALIASES.get(k, k): float(v) for k, v in weights.items()}
        bad = sorted(set(w) - set(names))
        if bad:
            raise InputError(
                f"weight for {bad[0]!r}, which is not an objective of this front ({', '.join(names)})"
            )
        if any(v < 0 for v in w.values()) or not any(v > 0 for v in w.values()):
            raise InputError(f"weights must be >= 0 with one > 0, got {dict(weights)}")
        rows = self.normalized(normalize)
        return min(
            range(len(rows)),
            key=lambda i: sum(w.get(n, 0.0) * x for n, x in zip(names, rows[i], strict=True)),
        )

    def rows(self) -> list[dict[str, Any]]:
        """One dict per point: objectives, configuration and headline numbers."""
        knee = self.knee() if self.plans else -1
        out = []
        for i, p in enumerate(self.plans):
            c, perf = p.config, p.perf
            gpus = c.tp * c.pp * c.replicas
            out.append(
                {
                    "point": i,
                    "label": config_label(p),
                    "knee": i == knee,
                    **{
                        f"objective_{ALIASES.get(n, n)}": perf[METRICS[ALIASES.get(n, n)][0]]
                        for n in self.objectives
                    },
                    "tp": c.tp,
                    "pp": c.pp,
                    "dp": c.replicas,
                    "ep": c.tp * c.pp if c.enable_expert_parallel else 1,
                    "max_num_seqs": c.max_num_seqs,
                    "max_model_len": c.max_model_len,
                    "gpu_memory_utilization": c.gpu_memory_utilization,
                    "kv_cache_dtype": c.kv_cache_dtype,
                    "quantization": c.quantization or "none",
                    "enforce_eager": c.enforce_eager,
                    "gpus": gpus,
                    "throughput_tok_s": perf["output_tokens_per_s"],
                    "ttft_ms": perf["ttft_ms"],
                    "tpot_ms": perf["tpot_ms"],
                    "usd_per_million_tokens": perf["usd_per_million_tokens"],
                    "usd_per_hour": p.cluster.gpu.usd_per_hour * gpus,
                    "kv_headroom_gib": perf["kv_headroom_gib"],
                    "solver_status": p.solver.get("status", ""),
                }
            )
        return out

    def to_pandas(self) -> pd.DataFrame:
        """The front as a DataFrame, one row per point."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def write(self, path: str | Path) -> None:
        """Save the table as Parquet, CSV or JSON lines (by suffix)."""
        from autoparallel.sweeps.results import write_rows

        write_rows(path, self.rows())

    def plot(self, path: str | Path, *, title: str | None = None) -> int:
        """Save a scatter of the front (2 objectives) or its pairwise panels (3+) as PNG or SVG, each point
        labelled with its configuration and the knee starred. Returns the points drawn per panel."""
        return plot_front(self, Path(path), title=title)


def plot_front(front: Front, path: Path, *, title: str | None = None) -> int:
    """See `Front.plot`."""
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--plot {str(path)!r}: use a .png or .svg file name")
    if not path.parent.is_dir():
        raise InputError(f"--plot {str(path)!r}: folder {str(path.parent)!r} not found")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [ALIASES.get(n, n) for n in front.objectives]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.8 * rows), squeeze=False)
    knee = front.knee()
    labels = [config_label(p) for p in front.plans]
    drawn = 0
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        xs, ys = front.values(a), front.values(b)
        dots = ax.scatter(xs, ys, s=28, color="tab:blue", zorder=2, label="front")
        drawn = len(dots.get_offsets())
        ax.scatter(
            [xs[knee]],
            [ys[knee]],
            s=220,
            marker="*",
            color="tab:red",
            zorder=3,
            label=f"knee: {labels[knee]}",
        )
        for x, y, text in zip(xs, ys, labels, strict=True):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6, alpha=0.8)
        ax.set_xlabel(METRICS[a][1] + (" ↑" if METRICS[a][2] else " ↓"))
        ax.set_ylabel(METRICS[b][1] + (" ↑" if METRICS[b][2] else " ↓"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    status = (
        "complete"
        if front.complete
        else f"cut at {front.cap} points"
        if len(front) >= front.cap
        else "not proven complete"
    )
    fig.suptitle(title or f"Pareto front: {' vs '.join(names)} ({len(front)} points, {status})")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Description": f"points={len(front)} panels={len(pairs)}"})
    plt.close(fig)
    return drawn
