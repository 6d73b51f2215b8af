"""Adaptive and importance-aware transmission: channel-state feedback, the SNR → ratio table, budgets,
importance ranking, and their evaluation (docs/adapt.md)."""
