"""A fault on one datastore of the environment (`target.datastore`): its settings and its write/read probe."""

from __future__ import annotations

from lifeboat.chaos.faults.base import Fault
from lifeboat.chaos.probes import DatastoreProbe


class DatastoreFault(Fault):
    probe_weight = 2  # the datastore's own write/read probe, in the resilience score

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.datastore = str(self.spec.target["datastore"])
        self.ds = self.env.datastores[self.datastore]

    def probes(self):
        engine = self.inv.datastore(self.datastore).engine
        return [DatastoreProbe(f"write-read-{self.datastore}", engine, self.ds.connection, self.record_id,
                               weight=self.probe_weight)]
