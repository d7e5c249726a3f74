"""The configuration repository (Git): bundles of every ref, verified by unpacking, restore-tested by
cloning, and a drift check of the clusters' ConfigMaps against the deployed commit.

Backup kind `bundle` (docs/datastores/config.md): `git clone --mirror` of the primary, `git bundle create
--all` stored as `config.bundle`, every ref with its object, commit and tree in the manifest. Verification:
`git bundle verify` plus unpacking the bundle into an empty repository and `git fsck` (bundle verify
alone passes a flipped byte); no ref rewritten since the backup (branches only fast-forward, tags never
move, except `moving_refs`); the standby mirror holds the primary's refs. Restore test: `git clone
--mirror` of the bundle, fsck, refs and tree hashes compared. Monitor: ConfigMaps in each cluster equal
the repository's files at `deployed/<region>` (lifeboat.configrepo.drift). Heartbeat: a commit on
`refs/lifeboat/heartbeat/<datastore>` whose message holds its time (bundles carry it; clones of
branches and tags do not).
"""

from lifeboat.datastores.config.engine import ConfigDatastore
from lifeboat.datastores.config.options import ConfigOptions

__all__ = ["ConfigDatastore", "ConfigOptions"]
