"""CDN engine options (`datastores.<name>.options`): pydantic only."""

from __future__ import annotations

from pydantic import Field

from lifeboat.datastores.options import EngineOptions


class CdnOptions(EngineOptions):
    distribution_id: str = Field(min_length=1, description="the CloudFront distribution of the platform")
    required_status_codes: list[int] = Field(default=[500, 502, 503, 504])
    allow_direct_default: bool = Field(default=False, description="the default behavior may target a primary "
                                       "origin directly (moto refuses an origin group there): a warning only")
    scratch_distribution: bool = Field(default=False, description="restore tests create (and delete) a scratch "
                                       "distribution from the backup; false: read-only restore test (production)")
