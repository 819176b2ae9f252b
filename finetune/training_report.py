"""What a training leaves beside its adapter: the manifest and the loss plot."""

from __future__ import annotations

import json
from pathlib import Path

from autoact.io import atomic_write_bytes

MANIFEST_NAME = "autoact-adapter.json"
LOSS_PLOT_NAME = "loss.png"


def write_json(path: Path, data: dict) -> Path:
    return atomic_write_bytes(Path(path), (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())


def read_manifest(adapter_dir: Path) -> dict:
    path = Path(adapter_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{adapter_dir}: no {MANIFEST_NAME} (not an adapter trained by autoact finetune)")
    return json.loads(path.read_text())


def loss_curve(log_history: list[dict]) -> list[dict]:
    """The training-loss points of a Trainer's log history, one per logging step."""
    points = []
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            point = {"step": int(entry["step"]), "loss": float(entry["loss"])}
            if "epoch" in entry:
                point["epoch"] = round(float(entry["epoch"]), 4)
            if "learning_rate" in entry:
                point["learning_rate"] = float(entry["learning_rate"])
            points.append(point)
    return points


def plot_loss(curves: dict[str, list[dict]], path: Path, title: str = "training loss") -> Path:
    """A PNG with one line per named loss curve (written atomically)."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    try:
        for name, curve in curves.items():
            if curve:
                ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], marker=".", label=name)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("loss (target tokens)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return atomic_write_bytes(Path(path), buffer.getvalue())
