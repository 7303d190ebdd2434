# S3 for the compose stack: moto's standalone server (PyPI), where MinIO cannot be had (it is on
# neither PyPI nor Debian). Objects live in memory: a restart of this container loses them.
ARG BASE=python:3.11-slim
FROM ${BASE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python -m venv /opt/moto && /opt/moto/bin/pip install --quiet \
        -c /tmp/requirements.lock 'moto[server]' \
    && /opt/moto/bin/python -m pip uninstall --quiet --yes pip setuptools \
    && useradd --uid 10002 --no-create-home --shell /usr/sbin/nologin moto
USER 10002
EXPOSE 9000
ENTRYPOINT ["/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "9000"]
