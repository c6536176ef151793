# syntax=docker/dockerfile:1.7@sha256:a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e
# MLflow tracking server for the compose stack: the same mlflow as requirements.lock, plus the Postgres
# driver (backend store) and boto3 (S3 artifact store). Built by compose with docker/ as the context; it
# copies only synthpipe-secrets.sh from it (docker/mlflow.Dockerfile.dockerignore keeps docker/.env and
# docker/secrets/ out of the context). The base is pinned by digest (docker/README.md).
FROM python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.5 \
    && useradd --uid 10001 --create-home mlflow

# Checks the secrets compose lists in SYNTHPIPE_SECRETS and exports them (PGPASSWORD for the backend
# store, the S3 user for the artifact store) before mlflow starts.
COPY --chmod=755 synthpipe-secrets.sh /usr/local/bin/synthpipe-secrets

USER 10001
WORKDIR /home/mlflow
EXPOSE 5000

# /health answers without the Host-header check, so the probe works whatever --allowed-hosts says.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]

ENTRYPOINT ["/usr/local/bin/synthpipe-secrets"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
