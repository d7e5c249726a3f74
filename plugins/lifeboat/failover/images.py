"""Container images failover: nothing to promote. The standby region's registry already serves the images
in use under the same digests (lifeboat_backup_images replicates them, its verification proves it); the
standby cluster's Deployments name the standby registry (include/platform/values.toml). What is left
by hand: replicate anything the standby still lacks if the primary registry is reachable."""

from __future__ import annotations

from lifeboat.failover.base import NotAutomated


class ImagesFailover(NotAutomated):
    engine = "images"
    manual = ("nothing to promote: the standby registry serves the replicated images under the same digests; "
              "if the primary registry still answers, copy what the standby lacks with `skopeo copy --all "
              "--preserve-digests` (docs/datastores/images.md)")
