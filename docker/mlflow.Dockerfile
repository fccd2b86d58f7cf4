# The MLflow tracking server: PostgreSQL backend store, artifacts served by the server itself.
# compose.yaml passes PYTHON_IMAGE through (docker/local-base/build.sh builds a stand-in without Docker Hub).
# Build context: docker/ (compose.yaml), so the COPY paths below are relative to that folder.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# rfsweep's `tracking-server` extra, pinned by mlflow-constraints.txt to the versions CI tested
# (docker/pin_image_deps.py): the server on the clients' MLflow, psycopg 3 for postgresql+psycopg://.
COPY mlflow-constraints.txt /tmp/mlflow-constraints.txt
RUN /opt/venv/bin/pip install -c /tmp/mlflow-constraints.txt mlflow 'psycopg[binary]' boto3

FROM ${PYTHON_IMAGE} AS runtime
# /mlartifacts is the artifacts volume's mount point; a fresh volume takes this folder's owner.
RUN groupadd --system --gid 10002 mlflow \
 && useradd --system --uid 10002 --gid mlflow --create-home --home-dir /home/mlflow mlflow \
 && mkdir -p /mlartifacts \
 && chown mlflow:mlflow /mlartifacts
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10002:10002
WORKDIR /home/mlflow
EXPOSE 5000
# A real API call, not /health: a Host header outside --allowed-hosts gets 403 there while /health says 200.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://localhost:5000/api/2.0/mlflow/experiments/search?max_results=1', timeout=5)"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--artifacts-destination", "/mlartifacts"]
