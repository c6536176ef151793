"""Synthetic-data pipeline orchestrator: render, crop, refine, reinsert, train, evaluate."""
