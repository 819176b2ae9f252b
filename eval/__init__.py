"""Evaluation: answer metrics, the methods compared (AutoAct, baselines, ablations),
the concurrent resumable benchmark runner, aggregation, reports and plots."""
