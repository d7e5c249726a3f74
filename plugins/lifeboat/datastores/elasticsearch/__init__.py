"""Elasticsearch: snapshots into a snapshot repository (fs locally, s3 in production).

Backups are Elasticsearch's own snapshots in Elasticsearch's own repository format, so
`PUT _snapshot/<repo>` + `POST _snapshot/<repo>/<snapshot>/_restore` alone bring them back (see
docs/datastores/elasticsearch.md). Lifeboat adds:

* **deterministic snapshot names** (`backup id`, lowercased) tagged with `metadata.lifeboat_backup_id`;
  a retried task finds and replaces its predecessor's unfinished attempt instead of taking a second
  snapshot beside it, and never touches a snapshot it did not take;
* **no polling granularity on the backup's critical path**: the snapshot is taken with
  `wait_for_completion=true` in a helper thread (the answer comes the moment it ends), bounded by
  `snapshot_timeout` (on timeout it is aborted so no half-finished snapshot is left); a dropped
  connection falls back to polling the snapshot's state;
* **exact counts when they can be exact**: each covered index's `max_seq_no` is read before the
  snapshot starts and after it ends; if no operation happened in between, the doc count taken
  between the two (after a refresh) is exactly what the snapshot holds and goes into
  `manifest.counts`. Indices written during the snapshot get a [min, max] range instead
  (`native.count_ranges`), and only documents unchanged over the whole window are kept as
  sampled hashes. No write block, no pause of the writers;
* **verification**: repository verify, snapshot state SUCCESS with zero shard failures and the same
  uuid, `_status`, every covered index present, manifest counts consistent with the snapshot, and --
  for fs repositories this worker can read -- every blob's Lucene CRC32 (lucene.py);
* **restore tests** into renamed indices `restored-<drill id>-<index>` (restore.py);
* **SLM-like retention** (`slm_retention`: expire_after / min_count / max_count) computed by the
  project, so it also works where SLM is unavailable (retention.py).

    options.py  cluster.py (every API call)  lucene.py  verify.py  restore.py  retention.py  engine.py
"""

from lifeboat.clients.elasticsearch import ElasticsearchApiError
from lifeboat.datastores.elasticsearch.engine import ElasticsearchDatastore
from lifeboat.datastores.elasticsearch.lucene import lucene_footer_problem
from lifeboat.datastores.elasticsearch.options import ElasticsearchOptions

__all__ = ["ElasticsearchApiError", "ElasticsearchDatastore", "ElasticsearchOptions", "lucene_footer_problem"]
