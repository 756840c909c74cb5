# syntax=docker/dockerfile:1
# rljudge: one image for the gateway and the judge workers; the command picks the role.
#
#   docker run IMAGE                                  -> rljudge gateway --host 0.0.0.0 --port 8000 (default)
#   docker run IMAGE worker --workers 4               -> rljudge worker (needs the capabilities in deploy/k8s/worker.yaml)
#
# Both stages start from the same pinned Debian 12 point release that development and CI run on,
# and use Debian's python3: the venv built in the first stage runs unchanged in the second (same
# interpreter path), and the code sandbox runs submissions with /usr/bin/python3 inside Firejail,
# exactly as `make install` + `make test` do on a Debian machine. Redis is not in this image: it runs
# in its own pod (deploy/k8s/redis.yaml). No secrets are baked in: RLJUDGE_REDIS_URL and the API keys
# file come from the environment at run time.

ARG DEBIAN_IMAGE=debian:12.11-slim

# ---------------------------------------------------------------- build: a venv with the two packages
FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1 \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/rljudge/venv
ENV PATH=/opt/rljudge/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The client first: it changes less often than the server, so its layer is reused.
COPY client/ client/
COPY pyproject.toml README.md ./
COPY service/ service/
COPY workers/ workers/
COPY sandbox/ sandbox/
COPY cli/ cli/
COPY trainer/ trainer/
# What `make install` installs (./client and .), as regular (not editable) installs, without the
# dev and trainer extras (the trainer package is part of the project; torch and the rest are not).
RUN pip install ./client . \
    && rljudge --help >/dev/null \
    && python -c "import rljudge, rljudge_service, rljudge_workers, rljudge_sandbox, rljudge_cli"

# ---------------------------------------------------------------- runtime
FROM ${DEBIAN_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# python3: runs the venv and, inside each jail, the submitted programs (rljudge_sandbox.jail.PYTHON).
# firejail: the code sandbox (the Makefile's APT_PACKAGES; redis-server runs in its own pod).
# tini: PID 1 that reaps orphaned jail processes and forwards SIGTERM to rljudge only (not to the
#       whole group), so RQ's warm shutdown finishes the current chunk while its jails keep running.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        firejail=0.9.72-2 \
        python3=3.11.2-1+b1 \
        tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rljudge \
    && useradd --system --uid 10001 --gid rljudge --home-dir /nonexistent --shell /usr/sbin/nologin rljudge
COPY --from=build /opt/rljudge/venv /opt/rljudge/venv
COPY deploy/healthcheck.py /opt/rljudge/healthcheck.py
ENV PATH=/opt/rljudge/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RLJUDGE_LOG_LEVEL=warning
WORKDIR /tmp
# The gateway runs as this unprivileged user. Workers run as root with a small capability set
# (Firejail needs it to build each jail; the submitted program itself runs as an unused uid with
# no capabilities): see deploy/k8s/worker.yaml.
USER 10001:10001
EXPOSE 8000
# Gateway: GET /healthz answers. Worker: the RQ pool parent is alive with at least one worker.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/opt/rljudge/healthcheck.py"]
ENTRYPOINT ["tini", "--", "rljudge"]
CMD ["gateway", "--host", "0.0.0.0", "--port", "8000"]
