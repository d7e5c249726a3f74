"""Configuration repository failover: not automated. The standby mirror holds the same refs (verified);
by hand the standby region's deploy tooling switches to the mirror and pushes go there until failback."""

from __future__ import annotations

from lifeboat.failover.base import NotAutomated


class ConfigFailover(NotAutomated):
    engine = "config"
    manual = ("point the deploy tooling at the standby mirror (same refs, verified weekly); if the mirror is "
              "behind, restore it from the newest bundle: git clone --mirror <bundle> && git push --mirror "
              "(docs/datastores/config.md)")
