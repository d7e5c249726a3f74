"""Inventory diff of two buckets (source = the primary region's, destination = its replica), by key,
ETag, size and -- when both sides keep versions -- version id. Pure logic: the listing is injected.

Both sides are read as key-ordered pages through a `Lister` (`lister(start_after, limit) ->
(entries, more)`; clients/s3.py's Bucket.list_page has this shape) and merge-joined, so memory stays
flat however large the buckets are. A run stops after `max_keys` keys and returns a JSON-safe
`DiffState` whose `cursor` is the last key compared: pass it back and the next run continues exactly
there (a retried Airflow task, or a large bucket compared across several runs). The diff is complete
when `state.complete` is True.

Findings name the key and what is wrong:
    missing    in the source, not in the destination (what a repair copies)
    different  in both, but ETag or size (or the version set) differ
    extra      only in the destination (deletes are not replicated by S3 CRR by default: informational)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MISSING, DIFFERENT, EXTRA = "missing", "different", "extra"


@dataclass(frozen=True)
class Entry:
    """One key of a bucket listing. `versions` is ((version_id, etag), ...) when versions are compared."""

    key: str
    etag: str = ""
    size: int = 0
    versions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, obj: Any) -> Entry:
        """From anything with key/etag/size attributes (clients.s3.ObjectInfo) or such a dict."""
        get = obj.get if isinstance(obj, dict) else (lambda k, d=None: getattr(obj, k, d))
        return cls(key=str(get("key")), etag=normalize_etag(get("etag", "") or ""), size=int(get("size", 0) or 0))


Lister = Callable[[str, int], tuple[Sequence[Any], bool]]


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def is_multipart(etag: str) -> bool:
    return "-" in etag


@dataclass(frozen=True)
class Finding:
    key: str
    problem: str  # missing | different | extra
    detail: str = ""
    source: dict[str, Any] | None = None
    dest: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class DiffState:
    """Progress and result of a (possibly partial) diff; JSON-safe via to_json()/from_json()."""

    cursor: str = ""  # last key compared ("" = from the start)
    complete: bool = False
    compared: int = 0  # distinct keys looked at, over all runs
    source_keys: int = 0
    dest_keys: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {MISSING: 0, DIFFERENT: 0, EXTRA: 0})
    findings: list[dict[str, Any]] = field(default_factory=list)  # capped at max_findings
    truncated: bool = False  # more findings than were kept
    runs: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DiffState:
        return cls(**data) if data else cls()

    @property
    def ok(self) -> bool:
        """Complete and nothing missing or different (extra keys alone do not fail)."""
        return self.complete and not self.counts[MISSING] and not self.counts[DIFFERENT]

    def keys(self, problem: str) -> list[str]:
        return [f["key"] for f in self.findings if f["problem"] == problem]

    def summary(self) -> str:
        head = "complete" if self.complete else f"partial (cursor {self.cursor!r})"
        c = self.counts
        return (f"{head}: {self.compared} keys compared ({self.source_keys} source, {self.dest_keys} destination), "
                f"{c[MISSING]} missing, {c[DIFFERENT]} different, {c[EXTRA]} extra")


def iterate(lister: Lister, start_after: str = "", page_size: int = 1000) -> Iterator[Entry]:
    """Entries in key order after `start_after`, fetched page by page."""
    after = start_after
    while True:
        page, more = lister(after, page_size)
        last = after
        for obj in page:
            e = obj if isinstance(obj, Entry) else Entry.of(obj)
            if e.key <= last:
                raise ValueError(f"listing is not in key order: {e.key!r} after {last!r}")
            last = e.key
            yield e
        if not more or not page:
            return
        after = last


def compare(src: Entry, dst: Entry, *, compare_versions: bool = False) -> str:
    """'' when equal, else what differs."""
    problems = []
    if src.size != dst.size:
        problems.append(f"size {src.size} != {dst.size}")
    if src.etag != dst.etag:
        note = " (multipart upload: part sizes may differ)" if is_multipart(src.etag) or is_multipart(dst.etag) else ""
        problems.append(f"ETag {src.etag} != {dst.etag}{note}")
    if compare_versions:
        a, b = set(src.versions), set(dst.versions)
        if a - b:
            problems.append("versions missing in destination: " + ", ".join(sorted(v for v, _ in a - b)))
        if b - a:
            problems.append("versions only in destination: " + ", ".join(sorted(v for v, _ in b - a)))
    return "; ".join(problems)


def diff(source: Lister | Iterable[Any], dest: Lister | Iterable[Any], state: DiffState | dict | None = None, *,
         max_keys: int | None = None, page_size: int = 1000, compare_versions: bool = False,
         exclude_prefixes: Sequence[str] = (), max_findings: int = 10_000) -> DiffState:
    """Merge-join source and destination from `state.cursor` on; stop after `max_keys` keys."""
    st = state if isinstance(state, DiffState) else DiffState.from_json(state)
    if st.complete:
        return st
    st.runs += 1
    a = _source(source, st.cursor, page_size)
    b = _source(dest, st.cursor, page_size)
    x, y = next(a, None), next(b, None)
    budget = max_keys if max_keys is not None else -1

    def record(key: str, problem: str, detail: str = "", s: Entry | None = None, d: Entry | None = None) -> None:
        st.counts[problem] += 1
        if len(st.findings) < max_findings:
            st.findings.append(asdict(Finding(key, problem, detail,
                                              asdict(s) if s else None, asdict(d) if d else None)))
        else:
            st.truncated = True

    while x is not None or y is not None:
        if budget == 0:
            return st
        key = x.key if y is None or (x is not None and x.key <= y.key) else y.key  # type: ignore[union-attr]
        sx = x if x is not None and x.key == key else None
        dy = y if y is not None and y.key == key else None
        if not any(key.startswith(p) for p in exclude_prefixes):
            st.compared += 1
            if sx is not None:
                st.source_keys += 1
            if dy is not None:
                st.dest_keys += 1
            if sx is not None and dy is None:
                record(key, MISSING, "", sx, None)
            elif sx is None and dy is not None:
                record(key, EXTRA, "", None, dy)
            elif sx is not None and dy is not None:
                why = compare(sx, dy, compare_versions=compare_versions)
                if why:
                    record(key, DIFFERENT, why, sx, dy)
            budget -= 1
        st.cursor = key
        if sx is not None:
            x = next(a, None)
        if dy is not None:
            y = next(b, None)
    st.complete = True
    return st


def _source(src: Lister | Iterable[Any], after: str, page_size: int) -> Iterator[Entry]:
    if callable(src):
        return iterate(src, after, page_size)
    entries = sorted((e if isinstance(e, Entry) else Entry.of(e) for e in src), key=lambda e: e.key)
    return (e for e in entries if e.key > after)


def versioned(objects: Iterable[Any]) -> list[Entry]:
    """Group version listings (key, version_id, etag, size, is_latest) into one Entry per key: ETag and
    size of the latest version, every (version_id, etag) in `versions`."""
    def g(o: Any, k: str, d: Any = None) -> Any:
        return o.get(k, d) if isinstance(o, dict) else getattr(o, k, d)

    by_key: dict[str, list[Any]] = {}
    for o in objects:
        by_key.setdefault(g(o, "key"), []).append(o)
    out = []
    for key in sorted(by_key):
        vs = by_key[key]
        latest = next((v for v in vs if g(v, "is_latest", True)), vs[0])
        versions = tuple(sorted((str(g(v, "version_id") or "null"), normalize_etag(g(v, "etag", "") or ""))
                                for v in vs))
        out.append(Entry(key=key, etag=normalize_etag(g(latest, "etag", "") or ""),
                         size=int(g(latest, "size", 0) or 0), versions=versions))
    return out


def repair_plan(state: DiffState, *, include_different: bool = False) -> list[str]:
    """Keys a guarded repair copies from source to destination: the missing ones (and, only when asked,
    the different ones). Never deletes: extra keys in the destination are left alone."""
    if state.truncated:
        raise ValueError("the diff kept only part of its findings (max_findings): re-run it with a larger "
                         "max_findings before planning a repair")
    wanted = {MISSING} | ({DIFFERENT} if include_different else set())
    return [f["key"] for f in state.findings if f["problem"] in wanted]


def versions_lister(page: Callable[[str, int], tuple[Sequence[Any], bool, str]]) -> Lister:
    """Adapt a version listing (`Bucket.list_versions_page(key_marker, limit) -> (versions, more,
    next_marker)`, whole keys per page) into a Lister of one Entry per key with its version set."""

    def lister(start_after: str, limit: int) -> tuple[Sequence[Any], bool]:
        versions, more, _next = page(start_after, limit)
        return versioned(versions), more

    return lister
