"""Container images: the images in use replicated from the primary region's registry to the standby's
under the same digests, verified blob by blob, restore-tested into a scratch OCI layout.

Backup kind `replicate` (docs/datastores/images.md): the images in use are the primary cluster's
workloads' images (read-only list through the kubernetes connection) plus the inventory's list plus
the heartbeat image; each is pinned to the primary's digest and copied with `skopeo copy --all
--preserve-digests` only when the standby does not already serve that digest under that tag. The
manifest (`images.json`) records every reference with its digest in both registries, what was copied
and every blob. Verification reads each image's manifests and blobs from the standby (digest-checked);
a restore test pulls every image by digest from the standby into a scratch OCI layout and hashes each
blob. RPO: the oldest image in use the standby lacks (first-seen ledger in the catalog), else the
heartbeat image found in the restored layout.

    options.py  the inventory options      engine.py   the engine
    scratch.py  the restore-test target    (pure parts: lifeboat/images/refs.py, heartbeat.py, lag.py)
"""

from lifeboat.datastores.images.engine import ImagesDatastore
from lifeboat.datastores.images.options import ImagesOptions

__all__ = ["ImagesDatastore", "ImagesOptions"]
