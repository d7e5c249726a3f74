"""`make ui`: Airflow's own UI (`airflow standalone`) on the demo's metadata and the local stack.

Listens on 127.0.0.1:8080 only. User `admin`; its password is generated once into
airflow_home/simple_auth_manager_passwords.json.generated (printed below). DAGs start paused: unpause
lifeboat_heartbeat to get a heartbeat every minute.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT), str(ROOT / "scripts")]


def main() -> None:
    from airflow_env import VENV_BIN, airflow_env

    from devstack import stack

    os.environ.setdefault("LIFEBOAT_METRICS_TARGET", "127.0.0.1:8080")  # the stack's Prometheus scrapes this UI
    stack_env = stack.up()
    env = airflow_env(dict(os.environ), stack_env)
    pw_file = ROOT / "airflow_home" / "simple_auth_manager_passwords.json.generated"
    if not pw_file.exists():
        pw_file.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        pw_file.chmod(0o600)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(pw_file)
    print(f"Airflow UI: http://127.0.0.1:8080  user admin  password {json.loads(pw_file.read_text())['admin']}")
    print("Disaster Recovery page: http://127.0.0.1:8080/plugin/disaster-recovery")
    if stack_env.get("LIFEBOAT_PROMETHEUS_URL"):
        print(f"Prometheus (scrapes /lifeboat/metrics here): {stack_env['LIFEBOAT_PROMETHEUS_URL']}/alerts")
    if stack_env.get("LIFEBOAT_RECEIVERS_URL"):
        print(f"Alerts received (SMTP, Slack, PagerDuty stand-in, SMS): {stack_env['LIFEBOAT_RECEIVERS_URL']}/inbox")
    airflow = str(VENV_BIN / "airflow")
    os.execve(airflow, [airflow, "standalone"], env)  # noqa: S606 - the venv's airflow, argv list: no shell is safer


if __name__ == "__main__":
    main()
