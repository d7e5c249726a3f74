"""Redis: RDB snapshots over the replication protocol, the multi-part AOF directory, scratch restores.

Two backup kinds, both restorable with nothing but `redis-server` (see docs/datastores/redis.md):

* **rdb** -- `redis-cli --rdb <file>` asks the server for a full resynchronisation (`SYNC`, with
  `REPLCONF rdb-only 1`) and writes the RDB it streams: no shell access to the Redis host needed, the
  password goes in through `REDISCLI_AUTH`, never argv. Before that Lifeboat waits (up to
  `busy_wait`) for a running BGSAVE / BGREWRITEAOF to finish and refuses if it does not: it never
  queues a second fork on a busy server.
* **aof** -- where the runner can read the primary's `dir` (`options.data_dir`), the multi-part AOF
  directory (`appendonlydir/`), copied consistently (aof.py).

Nothing is written to the live server by a backup: it only reads INFO and takes the snapshot. Each
snapshot is loaded once into a private, throw-away `redis-server` (127.0.0.1, free port, random
password, `save ""`, never a replica of the live server; an RDB is fed to it while it streams in,
feed.py) to record *exact* facts of the snapshot in the manifest -- key counts per database
(persistent / volatile), the newest heartbeat, and a digest of a deterministic sample of keys
(sample.py).

Verification: `redis-check-rdb` / `redis-check-aof` on the stored files, sha256 and size of every
artifact. Restore test: copy the backup into a scratch folder (free space and memory checked
first), start a scratch `redis-server` on it, wait until loading is done, compare key counts (the RTO
clock stops) and the sampled digests with the manifest, read the heartbeat key for the RPO, kill it
(its data goes with its folder), delete it.

    options.py  the inventory options        rdb.py     RDB header reader (pure)
    sample.py   the key sample (pure)        aof.py     AOF manifest, consistent copy, partial tails
    host.py     disk, memory, file copies    server.py  the scratch redis-server
    verify.py   the verification checks      scratch.py the restore-test target
    feed.py     the snapshot fed to the scratch server while it streams in
    engine.py   the engine
"""

from lifeboat.datastores.redis.engine import RedisDatastore
from lifeboat.datastores.redis.options import RedisOptions
from lifeboat.datastores.redis.server import ScratchRedis

__all__ = ["RedisDatastore", "RedisOptions", "ScratchRedis"]
