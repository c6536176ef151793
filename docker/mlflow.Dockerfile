# syntax=docker/dockerfile:1
# MLflow tracking server for the compose stack: the same mlflow as requirements.lock, plus the Postgres
# driver (backend store) and boto3 (S3 artifact store). Built by compose with docker/ as the context;
# it copies nothing from it (docker/mlflow.Dockerfile.dockerignore keeps docker/.env out of the context).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.5 \
    && useradd --uid 10001 --create-home mlflow

USER 10001
WORKDIR /home/mlflow
EXPOSE 5000

# /health answers without the Host-header check, so the probe works whatever --allowed-hosts says.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]

CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
