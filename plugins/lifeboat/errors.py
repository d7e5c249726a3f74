"""Every error Lifeboat raises on purpose, defined once.

Each message names what is at fault (file and field, connection id, repository key, command) so the
on-call engineer reading a failed task log knows where to look without reading code.
"""

from __future__ import annotations


class LifeboatError(Exception):
    """Base class: an expected, explained failure (as opposed to a bug)."""


class InventoryError(LifeboatError):
    """include/inventory.yaml is missing, unparsable or invalid."""


class ConnectionConfigError(LifeboatError):
    """An Airflow connection named in the inventory is missing or incomplete."""


class RepositoryError(LifeboatError):
    """The backup repository (object storage) cannot be read or written."""


class CommandFailed(LifeboatError):
    """A native tool (pgbackrest, pg_dump, ...) exited non-zero or timed out."""

    def __init__(self, argv: list[str], returncode: int | None, output_tail: str, timed_out: bool = False):
        self.argv = argv
        self.returncode = returncode
        self.output_tail = output_tail
        self.timed_out = timed_out
        what = "timed out" if timed_out else f"exited with code {returncode}"
        super().__init__(f"command `{argv[0]}` {what}: {' '.join(argv)}\n--- last output ---\n{output_tail}")


class VerificationFailed(LifeboatError):
    """A backup failed verification; the message lists every problem found."""

    def __init__(self, backup_id: str, problems: list[str]):
        self.backup_id = backup_id
        self.problems = problems
        super().__init__(f"backup {backup_id} failed verification:\n- " + "\n- ".join(problems))


class RestoreFailed(LifeboatError):
    """A restore (test) could not bring a target up or its data did not match."""


class Refused(LifeboatError):
    """A safety guard refused a destructive or unsafe action."""


class BackupNotFound(LifeboatError):
    """The catalog has no (complete) backup matching the request."""


class ServiceError(LifeboatError):
    """A platform service Lifeboat talks to (container registry, object store, Git server, CDN API)
    refused a request or answered wrongly; the message names the service, the endpoint (never its
    credentials) and the object at fault."""


class DigestMismatch(ServiceError):
    """Content read back does not hash to the digest it was addressed by (a corrupt blob/manifest)."""


class ServiceUnsupported(ServiceError):
    """The service does not implement an API Lifeboat asked for (SeaweedFS answers NotImplemented to
    PutBucketReplication/GetBucketReplication); the caller decides what stands in for it."""


class KubernetesError(LifeboatError):
    """The Kubernetes API refused or failed; the message names the connection, the namespace and the object."""
