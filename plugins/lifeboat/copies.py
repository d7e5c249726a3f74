"""The two catalog copies (one per region) for the records operations keep next to the backups:
incidents, reports, runbooks. Writes go to both copies; reads use the first readable one.

    readable(inv, region) -> (Repository, region used, note)   the region's copy, else the other's
    put_everywhere(repo, key, data)                              both regions (fails only if neither took it)
"""

from __future__ import annotations

import logging

from lifeboat.errors import RepositoryError

log = logging.getLogger(__name__)


def storages(repo) -> list:
    return [s for s in (repo.primary, repo.mirror_storage) if s is not None]


def put_everywhere(repo, key: str, data: bytes) -> list[str]:
    """Write `key` to every copy; returns the URLs written. Raises only when no copy took it."""
    done, errors = [], []
    for st in storages(repo):
        try:
            st.put_bytes(key, data)
            done.append(st.url)
        except Exception as exc:  # the other region must still get it
            errors.append(f"{st.url}/{key}: {type(exc).__name__}: {exc}")
            log.warning("could not write %s/%s: %s", st.url, key, exc)
    if not done:
        raise RepositoryError("; ".join(errors))
    return done


def delete_everywhere(repo, key: str) -> None:
    for st in storages(repo):
        try:
            st.delete(key)
        except Exception as exc:
            log.warning("could not delete %s/%s: %s", st.url, key, exc)


def usable(storage) -> str | None:
    """None when the copy can be read, else why not."""
    local = storage.local_path("")
    if local is not None:
        return None if local.is_dir() else f"{storage.url} does not exist"
    try:
        next(iter(storage.list("drills/")), None)
    except Exception as exc:
        return f"{storage.url}: {type(exc).__name__}: {exc}"
    return None


def readable(inv, region: str | None = None):
    """(Repository seen from the first readable region, that region, a note when it fell back)."""
    from lifeboat.repository import Repository

    wanted = region or inv.regions.primary
    other = inv.regions.standby if wanted == inv.regions.primary else inv.regions.primary
    reasons = []
    for candidate in (wanted, other):
        try:
            repo = Repository.from_inventory(inv, candidate)
            why = usable(repo.primary)
        except Exception as exc:
            why = f"repository.{candidate}: {type(exc).__name__}: {exc}"
        if why is None:
            note = f"{wanted}'s copy unreadable ({reasons[0]}); read {candidate}'s" if reasons else ""
            return repo, candidate, note
        reasons.append(why)
    raise RepositoryError("no readable catalog copy in either region: " + "; ".join(reasons))
