"""MongoDB: consistent full dumps plus oplog incrementals, point-in-time restore into scratch databases.

Backups are written in the layout `mongodump --gzip --oplog` writes, so `mongorestore --gzip
--oplogReplay` restores them without this code (docs/datastores/mongodb.md has the commands):

    <backup>/dump/<db>/<collection>.bson.gz            standard BSON stream, gzip
    <backup>/dump/<db>/<collection>.metadata.json.gz   options + indexes (mongodump's extended JSON)
    <backup>/dump/oplog.bson                           oplog entries of the dump window, gzip-compressed
                                                       (mongorestore --gzip reads this exact name gzipped)

* **full** (series "full"): the newest oplog position is recorded before the dump, every collection
  of the configured databases is streamed (dump.py), then a *consistent point* is found -- an oplog
  position at which the per-collection counts were read with no write in between -- and the oplog
  entries from the dump's start to that point are captured into `dump/oplog.bson` (what `mongodump
  --oplog` does). Dump + replay of that window = the database exactly at the consistent point, where
  the manifest's counts are exact. Each collection also gets an order-independent content hash.
* **oplog** (series "oplog"): a slice of the oplog from the last captured position (exclusive) to a
  new consistent point (inclusive), gzip, parent = the previous link of the chain.
* **verify**: artifact sha256, every BSON file parsed end to end (a corrupted file is named),
  metadata parsed, the chain back to a full without gap (a missing range is named), and for the
  chain's tip an alert-worthy check that the server's oplog will not roll past the last captured
  point before the next backups (or has already).
* **restore_test**: into scratch databases on the same server, named `lifeboat_scratch_<tag>_<db>`
  (scratchdb.py refuses any other name, and any live database's name): load the dump, compare counts
  and content hashes, replay the oplog slices up to the target (apply.py: every update form the server
  writes, deletes, commands and transactions), compare counts at every exact checkpoint, measure
  RTO/RPO from the heartbeat collection, drop the scratch databases.

Against real MongoDB the backup user needs the `backup` role (and `restore`-like rights on
`lifeboat_scratch_*` for restore tests); the local stack runs FerretDB v1.24 (see devstack).

    options.py  oplog.py (positions, chains, replay plans)  bsonio.py  apply.py  scratchdb.py
    server.py (the live server)  pipeline.py (overlapped batches)  dump.py  verify.py  scratch.py (restore target)
    engine.py
"""

from lifeboat.datastores.mongodb.apply import OplogApplier, apply_diff
from lifeboat.datastores.mongodb.engine import MongoDatastore
from lifeboat.datastores.mongodb.options import SCRATCH_PREFIX, MongoOptions
from lifeboat.datastores.mongodb.scratchdb import ScratchDatabases

__all__ = ["SCRATCH_PREFIX", "MongoDatastore", "MongoOptions", "OplogApplier", "ScratchDatabases", "apply_diff"]
