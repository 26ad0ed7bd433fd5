# syntax=docker/dockerfile:1
# One image for every Jalon process:
#   web     jalon serve --host 0.0.0.0   (the default command)
#   worker  jalon worker                 (needs REDIS_URL)
#   once    jalon migrate                (with DATABASE_URL = the owner role)
# Configuration comes from the environment (see .env.example and docs/deploy.md).
# Not yet built on a machine with a Docker daemon: see README.md, "Docker".

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtualenv with Jalon's wheel and its runtime dependencies (no dev extras) ---
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/jalon \
    && /opt/jalon/bin/pip install --upgrade pip

WORKDIR /src
# .dockerignore keeps the virtualenv, local data, tests and secrets out of the context.
COPY . .
# Build the wheel (in an isolated build environment: project.license needs a recent
# setuptools), then install it, not the source tree, into the virtualenv.
RUN /opt/jalon/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/jalon/bin/pip install /wheels/jalon-*.whl

# --- runtime: the virtualenv on a clean slim image, run by an unprivileged user ---
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="Jalon" \
      org.opencontainers.image.description="Assess, develop and certify digital skills: a self-hostable, multi-tenant digital commons." \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

RUN groupadd --system --gid 10001 jalon \
    && useradd --system --uid 10001 --gid jalon --home-dir /var/lib/jalon --create-home \
       --shell /usr/sbin/nologin jalon

COPY --from=builder /opt/jalon /opt/jalon
COPY LICENSE /usr/share/doc/jalon/LICENSE
# The documentation pages the app serves (/docs/webhooks: web.documents).
COPY docs/webhooks.md /usr/share/doc/jalon/webhooks.md

ENV PATH=/opt/jalon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JALON_DATA_DIR=/var/lib/jalon

WORKDIR /var/lib/jalon
USER jalon:jalon

EXPOSE 8000

# /healthz answers while the process runs; /readyz (database, Redis) is for load balancers.
# The worker serves no HTTP: disable this check for it (docker-compose.yml does).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["jalon", "serve", "--host", "0.0.0.0", "--port", "8000"]
