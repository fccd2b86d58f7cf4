#!/bin/sh
# Runs once, on a fresh data volume (postgres image's /docker-entrypoint-initdb.d): one database for
# MLflow's backend store, one for the API's sweep store, both owned by POSTGRES_USER.
set -eu
for database in "${MLFLOW_DB_NAME:?}" "${RFSWEEP_DB_NAME:?}"; do
  psql -v ON_ERROR_STOP=1 -v database="$database" --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" <<'SQL'
CREATE DATABASE :"database";
SQL
done
