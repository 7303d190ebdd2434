#!/bin/sh
# First start: initdb, then the two databases and their roles; every start: exec postgres.
# Passwords come from the environment (compose: MLFLOW_DB_PASSWORD, PREDICTIONS_DB_PASSWORD).
set -eu
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD}" "${PREDICTIONS_DB_PASSWORD:?set PREDICTIONS_DB_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb --auth-local=trust --auth-host=scram-sha-256 --username=postgres -D "$PGDATA" >/dev/null
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -q -U postgres \
        -v mlflow_pw="$MLFLOW_DB_PASSWORD" -v pred_pw="$PREDICTIONS_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE ROLE tabserve LOGIN PASSWORD :'pred_pw';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE predictions OWNER tabserve;
SQL
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres-entrypoint: initialised $PGDATA (databases mlflow, predictions)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
