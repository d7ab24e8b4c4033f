# syntax=docker/dockerfile:1
# Production image of bauhof-sense. Build: `docker build -t bauhof-sense .`
# Without BAUHOF_DATABASE_URL the service starts an embedded PostgreSQL in BAUHOF_DATA_DIR;
# mount a volume there if you use it, or the data goes with the container.

# --- builder: wheels for the project and every dependency --------------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, from pyproject.toml alone, so that a code change does not download and
# rebuild them. The wheel of this (still empty) project is thrown away.
COPY pyproject.toml /deps/
RUN pip wheel --wheel-dir /wheels /deps \
 && rm /wheels/bauhof_sense-*.whl

WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime -----------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BAUHOF_HTTP_HOST=0.0.0.0 \
    BAUHOF_HTTP_PORT=8080 \
    BAUHOF_DATA_DIR=/var/lib/bauhof-sense

# The data directory doubles as home: the only place this user may write.
RUN groupadd --system --gid 10001 bauhof \
 && useradd --system --uid 10001 --gid bauhof --home-dir /var/lib/bauhof-sense \
        --no-create-home --shell /usr/sbin/nologin bauhof \
 && install -d -o bauhof -g bauhof -m 0750 /var/lib/bauhof-sense

# The wheels are mounted, not copied, so they never become a layer of the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels bauhof-sense

WORKDIR /var/lib/bauhof-sense
USER bauhof

EXPOSE 8080

# The slim image has no curl. Liveness only: /health/ready turns 503 when the database or the
# broker is away, and restarting this container would not bring either back.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BAUHOF_HTTP_PORT', '8080') + '/health/live', timeout=4)"]

# On `docker stop` the service writes what it has buffered (up to ~40 s when the database is
# slow): give it `--stop-timeout 45` (compose.yaml sets stop_grace_period).
ENTRYPOINT ["bauhof"]
CMD ["run"]
