"""The CDN: the CloudFront distribution's configuration and its failover origin groups.

Backup kind `config` (docs/datastores/cdn.md): GetDistributionConfig as `distribution-config.json`
(restorable with `aws cloudfront update-distribution --if-match <etag>` or `create-distribution`).
Verification: the stored JSON parses into a DistributionConfig whose origin groups fail over from the
primary region's origins to the standby's (lifeboat.cdn.origins), and the live distribution does too.
Restore test: with `scratch_distribution` (local moto) a scratch distribution is created from the backup
(new CallerReference, no aliases, disabled), read back and compared, then deleted; without it (production:
creating a distribution takes minutes and touches the account) a read-only restore test -- the backup is
parsed into the request an update-distribution would send and compared with the live distribution.
Monitor and the failover plan: the origin-group check on the live distribution.
"""

from lifeboat.datastores.cdn.engine import CdnDatastore
from lifeboat.datastores.cdn.options import CdnOptions

__all__ = ["CdnDatastore", "CdnOptions"]
