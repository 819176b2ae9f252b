"""Manifest helpers and the loss plot."""

from __future__ import annotations

import json

import pytest

from autoact.finetune.training_report import loss_curve, plot_loss, read_manifest, write_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_loss_curve_keeps_training_loss_points_only():
    history = [
        {"loss": 2.5, "grad_norm": 1.0, "learning_rate": 1e-4, "epoch": 0.25, "step": 1},
        {"loss": 2.1, "learning_rate": 9e-5, "epoch": 0.5, "step": 2},
        {"train_runtime": 9.7, "train_loss": 2.3, "epoch": 0.5, "step": 2},
    ]
    assert loss_curve(history) == [
        {"step": 1, "loss": 2.5, "epoch": 0.25, "learning_rate": 1e-4},
        {"step": 2, "loss": 2.1, "epoch": 0.5, "learning_rate": 9e-5},
    ]


def test_plot_is_a_png_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "sub" / "loss.png"
    curves = {"plan": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}], "tool": [{"step": 1, "loss": 3.0}]}
    plot_loss(curves, path)
    first = path.read_bytes()
    assert first.startswith(PNG_MAGIC) and len(first) > 2000
    plot_loss({"plan": curves["plan"]}, path, title="other")
    assert path.read_bytes() != first
    assert [p.name for p in path.parent.iterdir()] == ["loss.png"]  # no temporary files left


def test_manifest_round_trip_and_missing_manifest(tmp_path):
    write_json(tmp_path / "autoact-adapter.json", {"name": "plan", "result": {"global_step": 3}})
    assert read_manifest(tmp_path)["result"]["global_step"] == 3
    assert json.loads((tmp_path / "autoact-adapter.json").read_text())["name"] == "plan"
    with pytest.raises(FileNotFoundError, match="not an adapter trained by autoact finetune"):
        read_manifest(tmp_path / "nothing")
