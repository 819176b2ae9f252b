"""`autoact finetune`: flags and clear errors (training itself: test_finetune_train, _roundtrip)."""

from __future__ import annotations

import pytest

from autoact.app.cli import build_parser, main


def test_finetune_is_registered_with_its_flags(tmp_path):
    args = build_parser().parse_args(
        ["finetune", "--run", str(tmp_path), "--agents", "plan,tool", "--one-agent", "--epochs", "1",
         "--max-length", "512", "--batch-size", "2", "--lr", "3e-4", "--serve-check"]
    )
    assert args.command == "finetune"
    assert (args.agents, args.one_agent, args.serve_check) == ("plan,tool", True, True)
    assert (args.epochs, args.max_length, args.batch_size, args.lr) == (1.0, 512, 2, 3e-4)


def test_missing_data_is_reported_clearly(tmp_path, capsys):
    code = main(["finetune", "--run", str(tmp_path / "nothing"), "--max-steps", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no training data" in err and "plan.jsonl" in err and "synthesis step" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--general-ratio", "0.3"], "needs --general-data"),
        (["--agents", "Plan"], "invalid agent name"),
    ],
)
def test_bad_options_are_reported_clearly(tmp_path, capsys, argv, message):
    assert main(["finetune", "--run", str(tmp_path), *argv]) == 1
    assert message in capsys.readouterr().err
