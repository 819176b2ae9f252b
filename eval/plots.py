"""The report's figures (matplotlib, Agg backend, PNG): score by method and group,
and cost against score."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from autoact.io import atomic_file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write the figure beside ``path`` and rename it into place."""
    path = Path(path)
    try:
        with atomic_file(path, binary=True) as fh:
            fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return path


def score_by_group(
    methods: Sequence[str],
    columns: Sequence[str],
    cells: dict[str, dict[str, tuple[float, float | None]]],
    metric_label: str,
    path: Path,
    title: str = "",
) -> Path:
    """Grouped bars: one group of bars per column (level, then All), one bar per
    method, the seeds' standard deviation as error bars."""
    plt = _pyplot()
    n = max(len(methods), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(columns) * max(1, n / 3)), 4.0))
    for i, method in enumerate(methods):
        xs = [c + (i - (n - 1) / 2) * width for c in range(len(columns))]
        values = [cells[method].get(col, (0.0, None))[0] for col in columns]
        errors = [cells[method].get(col, (0.0, None))[1] or 0.0 for col in columns]
        has_err = any(errors)
        ax.bar(xs, values, width, label=method, yerr=errors if has_err else None, capsize=3 if has_err else 0)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns)
    ax.set_ylabel(metric_label)
    ax.set_ylim(0, max(100.0, *[v[0] for m in methods for v in cells[m].values()]) * 1.05)
    ax.set_title(title or f"{metric_label} by method and group")
    ax.legend(fontsize=8, ncols=min(n, 4))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def cost_vs_score(
    points: dict[str, dict[str, float | None]],
    x_label: str,
    y_label: str,
    path: Path,
    title: str = "",
) -> Path:
    """One point per method: ``{"x", "y", "x_err", "y_err"}``, labelled with its name."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for method, p in points.items():
        ax.errorbar(p["x"], p["y"], xerr=p.get("x_err") or None, yerr=p.get("y_err") or None, fmt="o", capsize=3)
        ax.annotate(method, (p["x"], p["y"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title or f"{y_label} against {x_label}")
    ax.grid(alpha=0.3)
    # room for the labels of the outermost points
    ax.set_xlim(0, max([p["x"] + (p.get("x_err") or 0) for p in points.values()] + [1.0]) * 1.2)
    ax.set_ylim(0, max([p["y"] + (p.get("y_err") or 0) for p in points.values()] + [1.0]) * 1.15)
    return _save(fig, path)
