# Stand-in for python:3.11-slim-bookworm (docker/local-base/build.sh): Debian bookworm's Python 3.11 with
# venv, `python` on PATH like the official image, and the build host's CA bundle for pip.
ARG BASE=rfsweep-local/debian:bookworm
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python
COPY host-ca.pem /etc/ssl/certs/build-host-ca.pem
ENV PIP_CERT=/etc/ssl/certs/build-host-ca.pem LANG=C.UTF-8
CMD ["python3"]
