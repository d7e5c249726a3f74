"""Airflow plugin registration. The DR page (FastAPI app + nav entry) is added here."""

from airflow.plugins_manager import AirflowPlugin


class LifeboatPlugin(AirflowPlugin):
    name = "lifeboat"
