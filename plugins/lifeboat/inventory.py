"""The inventory: one YAML file that describes the platform Lifeboat protects.

`load_inventory()` reads `include/inventory.yaml` (or `$LIFEBOAT_INVENTORY`), expands `${VAR}` /
`${VAR:-default}` in strings, validates it and returns an `Inventory`. Any problem raises
`InventoryError` whose message names the file and the dotted field path, e.g.

    include/inventory.yaml: datastores.postgres.backups.full.schedule: not a valid cron expression: '0 3 * *'

This module is imported at DAG-parse time: it must stay cheap (no database drivers, no network).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lifeboat import registry
from lifeboat.chaos.settings import ChaosSpec
from lifeboat.dependencies import ServiceSpec, check_map
from lifeboat.durations import (
    Duration,
    DurationOrZero,
    DurationStr,
    OptionalDuration,
    format_duration,
    parse_duration,
)
from lifeboat.durations import (
    check_cron as _check_cron,
)
from lifeboat.errors import InventoryError
from lifeboat.incidents.settings import AlertTiming, Contact, Escalation, check_references

__all__ = ["DurationStr", "Inventory", "format_duration", "load_inventory", "parse_duration", "parse_inventory"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = PROJECT_ROOT / "include" / "inventory.yaml"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _pick(mapping: dict[str, Any], key: str, where: str, what: str) -> Any:
    """mapping[key], else an InventoryError naming the field and what it does have."""
    try:
        return mapping[key]
    except KeyError:
        raise InventoryError(f"{where}: {what} (has: {', '.join(sorted(mapping)) or 'none'})") from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Objectives(_Model):
    rto: Duration = timedelta(hours=4)
    rpo: Duration = timedelta(hours=1)



class ObjectivesOverride(_Model):
    rto: OptionalDuration = None
    rpo: OptionalDuration = None



class Regions(_Model):
    primary: str
    standby: str

    @model_validator(mode="after")
    def _distinct(self) -> Regions:
        if self.primary == self.standby:
            raise ValueError("primary and standby must be different regions")
        return self


class RepositoryLocation(_Model):
    url: str
    connection: str | None = Field(default=None, description="Airflow connection id (aws) for s3:// URLs")

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not (v.startswith(("file://", "s3://"))):
            raise ValueError(f"repository url must start with file:// or s3://, got {v!r}")
        where = urlparse(v.rstrip("/"))  # what is kept: file:/// would become file:
        if v.startswith("file://") and (where.netloc not in ("", "localhost") or not where.path.startswith("/")):
            raise ValueError(f"file:// url must name an absolute path (file:///path), got {v!r}")
        if v.startswith("s3://") and not where.netloc:
            raise ValueError(f"s3:// url needs a bucket (s3://bucket/prefix), got {v!r}")
        return v.rstrip("/")


class BackupSchedule(_Model):
    schedule: str

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _check_cron(v)


class Retention(_Model):
    """Keep rules. A backup is kept if ANY rule keeps it; dependencies of kept backups are kept too,
    and the newest verified backup is always kept. `enforce: false` (default) only reports the plan."""

    keep_last: int = Field(default=7, ge=1)
    keep_within: DurationOrZero = timedelta(days=7)  # 0: the time rule keeps nothing (like keep_daily: 0)
    keep_daily: int = Field(default=7, ge=0)
    keep_weekly: int = Field(default=4, ge=0)
    keep_monthly: int = Field(default=3, ge=0)
    enforce: bool = False



class RunnerSpec(_Model):
    """Where the engine's native tools run: on the Airflow worker (`local`), or on the database host
    over SSH (`ssh`: region -> Airflow ssh connection with the key, lifeboat.ssh)."""

    kind: Literal["local", "ssh"] = "local"
    connections: dict[str, str] = {}

    @model_validator(mode="after")
    def _ssh_needs_connections(self) -> RunnerSpec:
        if self.kind == "ssh" and not self.connections:
            raise ValueError("runner.kind ssh needs runner.connections (region -> Airflow ssh connection)")
        return self


class DatastoreSpec(_Model):
    name: str = ""
    engine: str = Field(description="an engine of lifeboat.registry")
    connections: dict[str, str]
    objectives: ObjectivesOverride = ObjectivesOverride()
    backups: dict[str, BackupSchedule]
    retention: Retention = Retention()
    options: dict[str, Any] = {}
    runner: RunnerSpec = RunnerSpec()
    enabled: bool = True

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        return registry.check_engine(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", v):
            raise ValueError(f"datastore name {v!r} must match [a-z][a-z0-9_]* (it becomes a DAG id part)")
        return v

    def connection_for(self, region: str) -> str:
        return _pick(self.connections, region, f"datastores.{self.name}.connections",
                     f"no connection for region {region!r}")

    def ssh_connection_for(self, region: str) -> str:
        return _pick(self.runner.connections, region, f"datastores.{self.name}.runner.connections",
                     f"no ssh connection for region {region!r}")


class Schedules(_Model):
    heartbeat: str = "* * * * *"
    verify: str = "0 6 * * 1"
    restore_test: str = "0 4 1 * *"
    full_system_drill: str = "0 5 1 1,4,7,10 *"  # quarterly: the whole platform into a drill environment

    @field_validator("heartbeat", "verify", "restore_test", "full_system_drill")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _check_cron(v)


class AlertChannel(_Model):
    type: Literal["pagerduty", "slack", "email", "sms", "log"]
    connection: str | None = None
    target: str | list[str] | None = None


class Alerts(_Model):
    routes: dict[Literal["critical", "high", "medium", "low"], list[str]] = {
        "critical": ["log"],
        "high": ["log"],
        "medium": ["log"],
        "low": ["log"],
    }
    channels: dict[str, AlertChannel] = {"log": AlertChannel(type="log")}
    timing: AlertTiming = AlertTiming()  # lifeboat.incidents.settings: delivery windows per severity
    contacts: dict[str, Contact] = {}
    escalation: Escalation = Escalation()

    @model_validator(mode="after")
    def _known_channels(self) -> Alerts:
        missing = [s for s in ("critical", "high", "medium", "low") if not self.routes.get(s)]
        if missing:  # an alert of that severity would reach nobody
            raise ValueError(f"routes.{missing[0]}: no channel for {', '.join(missing)} alerts (use [log] to only "
                             "log them)")
        for severity, names in self.routes.items():
            for n in names:
                if n not in self.channels:
                    raise ValueError(f"routes.{severity}: unknown channel {n!r} (define it under alerts.channels)")
        needs = {"pagerduty": ("connection",), "slack": ("connection", "target"), "sms": ("connection", "target"),
                 "email": ("target",)}
        for n, ch in self.channels.items():
            for fld in needs.get(ch.type, ()):
                if not getattr(ch, fld):
                    raise ValueError(f"channels.{n}.{fld}: required for a channel of type {ch.type}")
        check_references(self.channels, self.contacts, self.escalation)
        return self


class FailoverRecord(_Model):
    """One DNS record the failover points at the active region (Route 53 UPSERT)."""

    name: str
    type: Literal["CNAME", "A", "AAAA"] = "CNAME"
    ttl: int = Field(default=60, ge=1, le=86400)
    targets: dict[str, str] = Field(min_length=1, description="region -> record value in that region")


class FailoverTraffic(_Model):
    connection: str = Field(description="Airflow aws connection for the Route 53 API (extra endpoint_url locally)")
    zone: str
    records: list[FailoverRecord] = Field(min_length=1)


class FailoverService(_Model):
    """A platform service (Kubernetes deployment) scaled up in the region taking over."""

    name: str
    namespace: str = "default"
    deployment: str = ""  # default: name
    kubernetes: dict[str, str] = {}  # region -> Airflow kubernetes connection id (absent: not scaled)
    replicas: int = Field(default=2, ge=1, description="replicas in the active region")
    standby_replicas: int = Field(default=0, ge=0, description="replicas in the standby region")
    health: dict[str, str] = {}  # region -> URL answering 200 when the process is up
    ready: dict[str, str] = {}  # region -> URL answering 200 when it can serve (writes to its datastores)
    ready_timeout: Duration = timedelta(minutes=5)



class FailoverSpec(_Model):
    """`failover:` -- what lifeboat_failover / lifeboat_failback act on. Cross-references (datastore
    names, regions) are checked by lifeboat.failover.check_inventory, whose errors name the field."""

    order: list[str] = []  # datastores in promotion order (default: inventory order)
    datastores: dict[str, dict[str, Any]] = {}  # per-datastore failover options (validated per engine)
    traffic: FailoverTraffic | None = None
    services: list[FailoverService] = []
    approval_timeout: Duration = timedelta(hours=1)
    approvers: list[str] = []  # Airflow user ids allowed to approve (empty: anyone allowed to edit the DAG)



class RecoverySettings(_Model):
    """`recovery:` -- lifeboat_recover, lifeboat_recover_service and the quarterly full-system drill."""

    dir: str = Field(default="", description="where new recovery targets live (default <workdir>/recovered); "
                     "kept after the recovery: put it on a volume meant for a database")
    approval_timeout: Duration = timedelta(hours=1)
    approvers: list[str] = []  # Airflow user ids allowed to approve (empty: anyone allowed to run the DAG)
    continuity_window: Duration = timedelta(minutes=15)  # heartbeats checked for gaps up to the recovered point
    heartbeat_gap: OptionalDuration = None  # largest gap allowed (default: 2 heartbeat intervals + 30 s)
    probe_requests: int = Field(default=20, ge=1, le=10000, description="requests of the error-rate probe")
    max_error_ratio: float = Field(default=0.05, ge=0, le=1, description="error-rate probe: highest share of 5xx")
    drill_timeout: Duration = timedelta(hours=4)  # the quarterly drill fails past this (the RTO objective)

    @field_validator("dir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if v and not v.startswith("/"):
            raise ValueError(f"must be an absolute path, got {v!r}")
        return v


class Inventory(_Model):
    version: Literal[1]
    platform: str
    regions: Regions
    objectives: Objectives = Objectives()
    repository: dict[str, RepositoryLocation]
    workdir: str = "/tmp/lifeboat"
    owner: str = "sre"
    schedules: Schedules = Schedules()
    alerts: Alerts = Alerts()
    datastores: dict[str, DatastoreSpec]
    failover: FailoverSpec | None = None
    chaos: ChaosSpec | None = None  # failure simulations (lifeboat.chaos)
    services: dict[str, ServiceSpec] = {}  # the dependency map (lifeboat.dependencies)
    recovery: RecoverySettings = RecoverySettings()
    source: str = Field(default="", exclude=True)

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must be an absolute path, got {v!r}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Inventory:
        regions = (self.regions.primary, self.regions.standby)
        for region in regions:
            if region not in self.repository:
                raise ValueError(f"repository: no location for region {region!r}")
        for region in self.repository:
            if region not in regions:
                raise ValueError(f"repository.{region}: not an inventory region (regions: {', '.join(regions)})")
        here, there = (_location(self.repository[r].url) for r in regions)
        if here[0] == there[0] and os.path.commonpath([here[1], there[1]]) in (here[1], there[1]):  # equal or nested
            raise ValueError(f"repository.{regions[1]}.url: the same place as {regions[0]}'s "
                             f"({self.repository[regions[1]].url} vs {self.repository[regions[0]].url}): the catalog "
                             "must live in two places (one bucket or folder per region)")
        if not self.datastores:
            raise ValueError("datastores: none listed (Lifeboat protects at least one datastore)")
        for name, ds in self.datastores.items():
            if ds.name != name:
                raise ValueError(f"datastores.{name}.name: {ds.name!r} differs from its key {name!r} (leave it out)")
            for region, conn in ds.connections.items():
                if region not in regions:
                    raise ValueError(f"datastores.{name}.connections.{region}: not an inventory region "
                                     f"(regions: {', '.join(regions)})")
                if not conn.strip():
                    raise ValueError(f"datastores.{name}.connections.{region}: empty Airflow connection id")
            if self.regions.primary not in ds.connections:
                raise ValueError(
                    f"datastores.{name}.connections: needs a connection id for the primary region "
                    f"{self.regions.primary!r}"
                )
            if not ds.backups:
                raise ValueError(f"datastores.{name}.backups: at least one backup kind with a schedule is required")
        check_map(self.services, {n: ds.engine for n, ds in self.datastores.items()})
        return self

    # -- helpers used by DAGs and engines -------------------------------------------------------
    def datastore(self, name: str) -> DatastoreSpec:
        return _pick(self.datastores, name, f"{self.source}: datastores.{name}", "not in the inventory")

    def enabled_datastores(self) -> list[DatastoreSpec]:
        return [ds for ds in self.datastores.values() if ds.enabled]

    def recovery_dir(self) -> str:
        return self.recovery.dir or os.path.join(self.workdir, "recovered")

    def objectives_for(self, name: str) -> Objectives:
        o = self.datastore(name).objectives
        return Objectives(rto=o.rto or self.objectives.rto, rpo=o.rpo or self.objectives.rpo)


def _location(url: str) -> tuple[str, str]:
    """(bucket, prefix) of an s3:// url, ("", normalised path) of a file:// url: what makes two the same place."""
    p = urlparse(url)
    if p.scheme == "s3":
        return p.netloc, "/"  # one bucket lives in one region: two prefixes in it are not two places
    return "", os.path.normpath(unquote(p.path))


def _expand_env(node: Any, path: str, source: str) -> Any:
    if isinstance(node, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k), source) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", source) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            var, default = m.group(1), m.group(2)
            _ENV_SEEN[var] = os.environ.get(var)
            value = os.environ.get(var)
            if value:
                return value
            if default is not None:
                return default
            raise InventoryError(f"{source}: {path}: environment variable ${{{var}}} is not set and has no default")

        if "${" in _ENV_REF.sub("", node):
            raise InventoryError(f"{source}: {path}: {node!r} is not a valid environment reference "
                                 "(write ${VAR} or ${VAR:-default})")
        return _ENV_REF.sub(repl, node)
    return node


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        sub = re.match(r"^([a-z_][\w.\-\[\]]*): (.*)$", msg, re.S)
        if sub:  # a model validator naming a field below its own location
            loc, msg = (f"{loc}.{sub.group(1)}" if loc else sub.group(1)), sub.group(2)
        lines.append(f"{source}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {seen[key]}): one entry would be lost",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_inventory(text: str, source: str = "inventory.yaml") -> Inventory:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InventoryError(f"{source}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise InventoryError(f"{source}: (top level): expected a mapping, got {type(raw).__name__}")
    raw = _expand_env(raw, "", source)
    datastores = raw.get("datastores")
    for name, ds in (datastores.items() if isinstance(datastores, dict) else ()):
        if isinstance(ds, dict):
            ds.setdefault("name", name)
    try:
        inv = Inventory.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise InventoryError(_format_validation_error(source, exc)) from None
    # Engine-specific options are validated by the engine's own model so errors name the field.
    for name, ds in inv.datastores.items():
        kinds = registry.backup_kinds(ds.engine)
        for kind in ds.backups:
            if kind not in kinds:
                raise InventoryError(f"{source}: datastores.{name}.backups.{kind}: {ds.engine} has no backup kind "
                                     f"{kind!r} (supported: {', '.join(kinds)})")
        model = registry.options_model(ds.engine)
        try:
            model.model_validate(ds.options)
        except ValidationError as exc:
            raise InventoryError(
                _format_validation_error(source, exc).replace(f"{source}: ", f"{source}: datastores.{name}.options.")
            ) from None
    return inv


_CACHE: dict[tuple[str, float], tuple[Inventory, dict[str, str | None]]] = {}
_ENV_SEEN: dict[str, str | None] = {}


def inventory_path() -> Path:
    return Path(os.environ.get("LIFEBOAT_INVENTORY") or DEFAULT_INVENTORY)


def load_inventory(path: str | os.PathLike[str] | None = None) -> Inventory:
    p = Path(path) if path else inventory_path()
    try:
        mtime = p.stat().st_mtime
    except FileNotFoundError:
        raise InventoryError(f"{p}: inventory file not found (set LIFEBOAT_INVENTORY or create it)") from None
    key = (str(p), mtime)
    cached = _CACHE.get(key)
    # A cached inventory is reused only while the environment variables it referenced are unchanged.
    if cached is None or any(os.environ.get(k) != v for k, v in cached[1].items()):
        try:
            display = str(p.relative_to(PROJECT_ROOT))
        except ValueError:
            display = str(p)
        _CACHE.clear()
        _ENV_SEEN.clear()
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8 text
            raise InventoryError(f"{p}: cannot read the inventory: {exc}") from None
        inv = parse_inventory(text, source=display)
        _CACHE[key] = (inv, dict(_ENV_SEEN))
    return _CACHE[key][0]
