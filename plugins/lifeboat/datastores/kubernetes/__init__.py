"""Kubernetes resources: Velero backups of whole namespaces (the Community Platform's `community`).

Backups are Velero's own `Backup` objects, written by the region's Velero server through its object-store
plugin into the region's bucket, so `velero restore create --from-backup <name>` alone brings them back
(docs/datastores/kubernetes.md). Lifeboat adds:

* **deterministic names** (`velero_name(backup id)`, annotated `lifeboat.io/backup-id`): a retried task
  finds its own Backup, waits for it or -- if that attempt failed -- deletes and retakes it; a Backup of
  that name that Lifeboat did not take is never touched;
* **a copy in the Lifeboat repository**: the backup's whole Velero folder (tarball, resource list,
  results, logs, `velero-backup.json`) under `velero/backups/<name>/` of the backup, so the catalog's
  mirror carries it to the other region and `artifact checksums` cover it; that folder is itself a
  Velero location layout (a read-only BackupStorageLocation on it restores the backup);
* **the manifest** (written last): Velero's name, phase, item counts per resource type, warnings and errors
  (with their messages), the tarball's key in the bucket and its SHA-256 read back, the resource list;
* **verification** (verify.py): phase Completed without errors, the tarball re-read from the bucket
  (SHA-256 and objects against the manifest), Velero's resource list, and the other region's Velero
  listing the backup through its read-only location;
* **restore tests** (scratch.py) by the standby cluster's Velero into `drill-<namespace>-<drill id>`
  namespaces, every restored object compared with the backed-up one, Deployments Ready, the heartbeat
  ConfigMap's timestamp for the RPO, the drill namespaces always deleted;
* **restore of missing objects into a live namespace** (recover.py: `restore_resources`), guarded;
* **retention** through Velero's DeleteBackupRequest; **the readiness audit** (audit.py) in the monitor.

    options.py  tarball.py (Velero's files, pure)  location.py (the bucket)  engine.py  verify.py
    scratch.py  recover.py  audit.py

This package's `__init__` imports nothing, so the inventory can validate options cheaply.
"""
