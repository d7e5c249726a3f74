"""The base of every engine's options model (`datastores.<name>.options` in the inventory).

Kept apart from `base.py` so the inventory can validate options at DAG-parse time importing pydantic
only: each engine's `options.py` imports this module and `lifeboat.durations`, nothing else.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EngineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
