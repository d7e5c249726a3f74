"""datastores/regional.py: the declared options model must be the registry's; per-region clients are
built once per region, the datastore's own region by default."""

from __future__ import annotations

import types

import pytest

from lifeboat.datastores.cdn.options import CdnOptions
from lifeboat.datastores.config.options import ConfigOptions
from lifeboat.datastores.regional import RegionalDatastore, per_region


def test_declared_options_must_be_the_registry_model():
    with pytest.raises(TypeError, match="declares options CdnOptions but the registry entry of engine 'config'"):
        class Wrong(RegionalDatastore[CdnOptions]):
            engine = "config"

    class Right(RegionalDatastore[ConfigOptions]):
        engine = "config"

    assert Right.Options is ConfigOptions


def test_per_region_builds_one_client_per_region_and_defaults_to_own_region():
    built: list[str] = []

    class Holder:
        region = "us-west-2"
        ctx = types.SimpleNamespace(inventory=types.SimpleNamespace(
            regions=types.SimpleNamespace(primary="us-west-2", standby="us-east-1")))
        other_region = RegionalDatastore.other_region

        @per_region
        def client(self, region: str) -> tuple[str, int]:
            built.append(region)
            return (region, len(built))

    h = Holder()
    assert h.client() == ("us-west-2", 1)
    assert h.client("us-west-2") is h.client()
    assert h.client("us-east-1") == ("us-east-1", 2)
    assert built == ["us-west-2", "us-east-1"]
    assert Holder().client() == ("us-west-2", 3)  # the cache is per instance
    assert h.other_region() == "us-east-1" and h.other_region("us-east-1") == "us-west-2"
