"""The team stack without Docker: PostgreSQL, prefect server and mlflow server on 127.0.0.1 with generated
credentials, and a folder DVC remote (``python -m pipeline.stack up|down|env|status``; code in ``servers``
and ``postgres``)."""
