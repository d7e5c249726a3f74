# Astro Runtime 3.x (Airflow 3.3). The runtime image's ONBUILD steps install packages.txt (apt) and
# requirements.txt (pip) and copy dags/, plugins/ and include/ into /usr/local/airflow.
# Not built on the development machines (they have no Docker engine); `astro dev start` or
# `docker build .` on a machine with Docker.
FROM astrocrpublic.azurecr.io/runtime:3.3-2

# The native tools Lifeboat drives (pgBackRest, pg_dump/pg_restore 15, redis-tools) come from packages.txt.
# pgBackRest and the PostgreSQL tools run where PGDATA is: in production the runner executes them on
# the database host (SSH) or in its pod (Kubernetes exec); see README "Runners".
ENV LIFEBOAT_WORKDIR=/usr/local/airflow/lifeboat-work
