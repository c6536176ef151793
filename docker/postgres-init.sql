-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- POSTGRES_DB (compose: prefect) is created by the image itself; this adds MLflow's backend store,
-- owned by the same POSTGRES_USER that runs init scripts.
CREATE DATABASE mlflow;
