"""Synthetic-data pipeline orchestrator: render, crop, refine, reinsert, train, evaluate."""

__version__ = "0.1.0"
