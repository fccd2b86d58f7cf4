# Stand-in for postgres:17-bookworm (docker/local-base/build.sh): Debian trixie's PostgreSQL 17 with an
# entrypoint that does what the official one does for compose.yaml: POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB on a fresh data folder, /docker-entrypoint-initdb.d/*.sh and *.sql run once, then the server.
ARG BASE=rfsweep-local/debian:trixie
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-17 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/17/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
USER postgres
EXPOSE 5432
ENTRYPOINT ["sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
