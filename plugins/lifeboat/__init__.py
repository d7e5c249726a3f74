"""Lifeboat: disaster recovery for the Community Platform, run as Airflow DAGs.

Everything here is importable without Airflow except `lifeboat.operators` and `lifeboat.dagkit`'s
callbacks, so the CLI (`python -m lifeboat`) works from the runbook when Airflow itself is down.
"""

__version__ = "0.1.0"
