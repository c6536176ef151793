# syntax=docker/dockerfile:1.7@sha256:a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e
# Prefect server for the compose stack: the same prefect as requirements.lock (its wheel carries the UI
# and the asyncpg driver) on the same digest-pinned Python base as the MLflow image. It replaces the
# official prefecthq/prefect:3.8.8-python3.11 image, for which no published digest could be verified
# (docker/README.md). Built by compose with docker/ as the context; it copies only synthpipe-secrets.sh.
FROM python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir prefect==3.8.8 \
    && useradd --uid 10002 --create-home prefect

# Checks the secrets compose lists in SYNTHPIPE_SECRETS and exports them (the database password and the
# API auth string) before the server starts.
COPY --chmod=755 synthpipe-secrets.sh /usr/local/bin/synthpipe-secrets

USER 10002
WORKDIR /home/prefect
EXPOSE 4200

# /api/health is exempt from the auth string.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=12 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4200/api/health', timeout=4)"]

ENTRYPOINT ["/usr/local/bin/synthpipe-secrets"]
CMD ["prefect", "server", "start", "--host", "0.0.0.0", "--port", "4200"]
