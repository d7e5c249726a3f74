"""Metrics from a real file:// catalog: values, the standby copy when the primary is gone, hooks."""

from __future__ import annotations

import shutil

import pytest

from lifeboat import metrics
from lifeboat.schedule import GRACE
from tests.ops_seed import NOW, seed


@pytest.fixture
def catalog(tmp_path):
    return seed(tmp_path, NOW)


def _value(samples, name, **labels):
    hits = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
    assert hits, f"no {name}{labels}"
    return hits[0]


def test_metrics_from_the_catalog_equal_the_records(catalog):
    s = metrics.collect(catalog["inv"], now=NOW, exposure=False)
    physical = [m for m in catalog["backups"] if m.series == "physical"]
    assert _value(s, "lifeboat_backup_count", series="physical") == len(physical)
    assert _value(s, "lifeboat_backup_age_seconds", series="physical") == 10 * 3600
    # lifeboat.schedule's staleness (the monitor and the DR page use it too): 2 x the hourly incr + grace
    assert _value(s, "lifeboat_backup_age_limit_seconds", series="physical") == 2 * 3600 + GRACE.total_seconds()
    assert _value(s, "lifeboat_verification_ok", datastore="postgres") == 1.0
    assert _value(s, "lifeboat_drill_rpo_seconds", type="restore_test") == catalog["drills"][0].rpo_seconds
    assert _value(s, "lifeboat_objective_rpo_seconds", datastore="postgres") == 900
    assert _value(s, "lifeboat_catalog_info", region="us-west-2", fallback="0") == 1


def test_metrics_read_the_standby_copy_when_the_primary_is_gone(catalog, tmp_path):
    shutil.rmtree(tmp_path / "us-west-2")
    s = metrics.collect(catalog["inv"], now=NOW, exposure=False)
    assert _value(s, "lifeboat_catalog_info", region="us-east-1", role="standby", fallback="1") == 1
    assert _value(s, "lifeboat_backup_age_seconds", series="logical") == 3600


def test_metrics_hooks_fill_their_metric_and_a_broken_hook_blanks_nothing(catalog, monkeypatch):
    monkeypatch.setattr(metrics, "_HOOKS", {})
    metrics.register_hook("chaos_scores", lambda inv, now: [({"scenario": "pod-kill"}, 0.75)])
    metrics.register_hook("s3_replication_lag", lambda inv, now: 1 / 0)
    text = metrics.render(metrics.collect(catalog["inv"], now=NOW, exposure=False)).decode()
    assert 'lifeboat_chaos_score{scenario="pod-kill"} 0.75' in text
    assert "# TYPE lifeboat_s3_replication_lag_seconds gauge" in text and "lifeboat_backup_count{" in text
    with pytest.raises(ValueError, match="unknown metrics hook"):
        metrics.register_hook("s3_lag", lambda inv, now: [])


def test_metrics_unreachable_datastore_is_exposure_up_zero(catalog, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2", raising=False)
    s = metrics.exposure_samples(catalog["inv"], timeout=1)
    assert s == [("lifeboat_exposure_up", {"datastore": "postgres"}, 0.0)]


def test_metrics_replication_hooks_from_the_engines_state_records(monkeypatch):
    """The built-in hooks read the canary and lacking-image records; the lag grows with the scrape time."""
    from datetime import timedelta
    from types import SimpleNamespace

    from lifeboat import replication_metrics as rm
    from lifeboat.objects import canary

    written = NOW - timedelta(seconds=90)
    prefix = "up/.lifeboat/canary/"
    states = {("uploads", "canaries"): {"bucket": "b-west", "canary_prefix": prefix,
                                        "canaries": {canary.key(written, "us-west-2", prefix): None}},
              ("images", "lacking"): {"repositories": {"community/api": (NOW - timedelta(seconds=30)).isoformat(),
                                                       "community/web": None}}}
    monkeypatch.setattr(rm, "_repo", lambda inv: SimpleNamespace(get_state=lambda ds, n: states.get((ds, n))))
    inv = SimpleNamespace(enabled_datastores=lambda: [SimpleNamespace(name="uploads", engine="objects"),
                                                       SimpleNamespace(name="images", engine="images"),
                                                       SimpleNamespace(name="postgres", engine="postgres")])
    assert list(rm.s3_replication_lag(inv, NOW)) == [({"bucket": "b-west"}, 90.0)]
    assert list(rm.s3_replication_lag(inv, NOW + timedelta(seconds=10))) == [({"bucket": "b-west"}, 100.0)]
    assert list(rm.image_replication_lag(inv, NOW)) == [({"repository": "community/api"}, 30.0),
                                                        ({"repository": "community/web"}, 0.0)]
    states.clear()  # no heartbeat / nothing lacking yet: no series at all
    assert list(rm.s3_replication_lag(inv, NOW)) == [] == list(rm.image_replication_lag(inv, NOW))
