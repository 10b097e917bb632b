-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d),
-- as POSTGRES_USER in POSTGRES_DB (the MLflow database): adds the Prefect server's
-- database beside it. deploy/k8s/configmap.yaml carries the same script.
CREATE DATABASE prefect;
