# A small image for the worker, beat and CLI: dependencies installed in a
# build stage, copied into a slim runtime that runs as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /app
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY templates ./templates
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# The code (/venv, /app) belongs to root and is read-only to the service user; everything
# Digest writes (a SQLite database, the outbox, the generated .digest-secret, the demo's
# sample site and previews) goes to /data, its working folder: a volume it owns.
RUN useradd --create-home --uid 10001 digest \
    && mkdir -p /data/outbox \
    && chown -R digest:digest /data
COPY --from=build /venv /venv
COPY templates /app/templates
ENV PATH=/venv/bin:$PATH \
    DIGEST_TEMPLATES_DIR=/app/templates \
    DIGEST_OUTBOX_DIR=/data/outbox \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /data
VOLUME ["/data"]
USER digest
CMD ["digest", "--help"]
