# syntax=docker/dockerfile:1.7
# The image of every Talkative service: slim, multi-stage, runs as an unprivileged user.
# One template, four images: the build arguments name the service (docker-compose.yml
# sets them under each service's `build: args:`). Build from the repository root:
#   docker build -f deploy/docker/service.Dockerfile -t talkative/caption-service \
#     --build-arg SERVICE=caption-service --build-arg EXTRA=caption \
#     --build-arg ENV_PREFIX=CAPTION --build-arg PORT=8001 --build-arg HEALTH_PATH=/readyz \
#     --build-arg IMPORTS=caption_service.main .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# SERVICE: the service's folder, its lock file (requirements/SERVICE.txt) and its console
# script; EXTRA: the pyproject extra it installs; IMPORTS: modules the build imports to
# prove the image is complete.
ARG SERVICE
ARG EXTRA
ARG IMPORTS
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what this service imports: the shared library and its own package.
# Dependencies first, pinned, in a layer of their own: a source edit below reuses it.
COPY requirements/${SERVICE}.txt ./requirements/
RUN pip install --no-deps -r requirements/${SERVICE}.txt
COPY pyproject.toml README.md ./
COPY talkative_common ./talkative_common
COPY ${SERVICE} ./${SERVICE}
# No TensorFlow: the graphs run in TF Serving, and the gRPC client builds TF Serving's
# messages from the descriptor set in talkative_common/model_client/protos (protobuf + grpcio).
# The in-process backend would need the `models` extra, which no image installs.
# Byte-code compiled here: the containers run with a read-only root file system.
# `talkative-service` names the service's console script, so CMD needs no argument.
RUN pip install --no-deps ".[${EXTRA}]" \
    && pip check \
    && python -c "import ${IMPORTS}" \
    && python -c "import importlib.util as u; assert u.find_spec('tensorflow') is None" \
    && ln -s "/opt/venv/bin/${SERVICE}" /opt/venv/bin/talkative-service

FROM ${PYTHON_IMAGE} AS runtime
# ENV_PREFIX: the service's settings prefix (CAPTION, TEXTGEN, GATEWAY, BOT); PORT: where
# it listens; HEALTH_PATH: what the health check asks (/readyz: models loaded; the bot,
# which loads none, /healthz). Everything else comes from compose or Kubernetes.
ARG ENV_PREFIX
ARG PORT
ARG HEALTH_PATH=/readyz
RUN groupadd --system --gid 10001 talkative \
    && useradd --system --uid 10001 --gid talkative --home-dir /nonexistent \
       --shell /usr/sbin/nologin talkative
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ${ENV_PREFIX}_HOST=0.0.0.0 \
    ${ENV_PREFIX}_PORT=${PORT} \
    TALKATIVE_PORT_VARIABLE=${ENV_PREFIX}_PORT \
    TALKATIVE_HEALTH_PATH=${HEALTH_PATH}
WORKDIR /app
# The bot's state folder (a volume under compose and Kubernetes), owned by the user so a
# fresh named volume starts writable; the other services never write there.
RUN mkdir -p /data && chown talkative:talkative /data
USER talkative:talkative
EXPOSE ${PORT}
# The port is read at run time, from the variable the service itself reads.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ[os.environ['TALKATIVE_PORT_VARIABLE']] + os.environ['TALKATIVE_HEALTH_PATH'], timeout=4)"]
CMD ["talkative-service"]
