"""Evaluation: metrics, baselines and sweeps."""
