# A small image for the worker, beat and CLI: dependencies installed in a
# build stage, copied into a slim runtime that runs as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /app
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY templates ./templates
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 digest && mkdir -p /data/outbox && chown digest /data/outbox
COPY --from=build /venv /venv
COPY templates /app/templates
ENV PATH=/venv/bin:$PATH \
    DIGEST_TEMPLATES_DIR=/app/templates \
    PYTHONUNBUFFERED=1
WORKDIR /data
USER digest
CMD ["digest", "--help"]
