"""The dependency map: which platform services use which datastores, buckets, images and configuration,
and the restore order it implies (dependencies first). Pure: pydantic and the standard library only
(the inventory validates it at DAG-parse time).

    services:                        # in include/inventory.yaml
      auth-service: {datastores: [postgres, redis]}
      api-gateway:  {depends_on: [auth-service], datastores: [postgres, redis, mongodb, elasticsearch]}
      frontend:     {depends_on: [api-gateway]}

A service's `datastores`, `buckets`, `images`, `config` and `kubernetes` name inventory datastores;
`buckets` / `images` / `config` / `kubernetes` must be datastores of that engine (objects / images /
config / kubernetes), `datastores` any other engine. `depends_on` names other services.

`check_map(...)` raises ValueError naming the field (`services.api-gateway.datastores[1]: unknown
datastore 'mongo' ...`) for unknown names and dependency cycles; `closure(...)` is what a scope needs;
`restore_order(...)` the order a recovery restores it in: a topological order of datastores and
services where every node comes after everything it depends on, services as early as their
dependencies allow (gradual recovery: a service comes back as soon as what it needs is restored),
ties broken by inventory order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

# field -> the engines its datastores must have (None: any engine not claimed by another field)
CATEGORIES: dict[str, tuple[str, ...] | None] = {
    "datastores": None, "buckets": ("objects",), "images": ("images",), "config": ("config",),
    "kubernetes": ("kubernetes",),
}
_CLAIMED = {e for engines in CATEGORIES.values() if engines for e in engines}


class ProcessRuntime(BaseModel):
    """A service run as a local process from a command: the devstack's platform API stand-in (a real
    deployment is repointed through its Kubernetes Secret and restarted with a rollout instead).

    Placeholders in `command`: {python} (the worker's interpreter), {port}, {env_file} (the connection
    config Lifeboat writes, 0600), {region}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    command: list[str] = Field(min_length=1)
    port: int = Field(default=0, ge=0, le=65535, description="the live instance's port (0: drill environments only)")
    dir: str = Field(default="", description="folder of the live instance's pidfile, env file and log")
    health_path: str = "/health"
    ready_path: str = "/ready"


class ServiceSpec(BaseModel):
    """One service of the dependency map (`services.<name>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    depends_on: list[str] = []
    datastores: list[str] = []
    buckets: list[str] = []
    images: list[str] = []
    config: list[str] = []
    kubernetes: list[str] = []
    # datastore -> the key of the service's connection config holding its URI (Secret key / env var)
    env: dict[str, str] = {}
    secret: str = Field(default="", description="Kubernetes Secret (in the service's namespace) holding `env`")
    process: ProcessRuntime | None = None

    def uses(self) -> list[str]:
        """Every datastore the service needs, in the order the fields list them."""
        out: list[str] = []
        for fld in CATEGORIES:
            out += [d for d in getattr(self, fld) if d not in out]
        return out


def check_map(services: Mapping[str, ServiceSpec], engines: Mapping[str, str]) -> None:
    """Every name known, every category right, no cycle; ValueError naming the field otherwise.
    `engines`: datastore name -> engine, in inventory order."""
    for name, svc in services.items():
        if name in engines:
            raise ValueError(f"services.{name}: {name!r} is also a datastore name (services and datastores share "
                             "the scope parameter)")
        for fld, allowed in CATEGORIES.items():
            seen: set[str] = set()
            for i, ds in enumerate(getattr(svc, fld)):
                where = f"services.{name}.{fld}[{i}]"
                if ds in seen:
                    raise ValueError(f"{where}: {ds!r} is listed twice")
                seen.add(ds)
                if ds not in engines:
                    raise ValueError(f"{where}: unknown datastore {ds!r} (has: {', '.join(engines) or 'none'})")
                engine = engines[ds]
                if allowed is not None and engine not in allowed:
                    raise ValueError(f"{where}: {ds!r} is a {engine} datastore; {fld} lists {'/'.join(allowed)} "
                                     "datastores")
                if allowed is None and engine in _CLAIMED:
                    field = next(f for f, e in CATEGORIES.items() if e and engine in e)
                    raise ValueError(f"{where}: {ds!r} is a {engine} datastore: list it under {field}")
        for i, dep in enumerate(svc.depends_on):
            if dep not in services:
                raise ValueError(f"services.{name}.depends_on[{i}]: unknown service {dep!r} "
                                 f"(has: {', '.join(services)})")
            if dep == name:
                raise ValueError(f"services.{name}.depends_on[{i}]: a service cannot depend on itself")
        for key in svc.env:
            if key not in svc.uses():
                raise ValueError(f"services.{name}.env.{key}: {key!r} is not a datastore this service uses "
                                 f"({', '.join(svc.uses()) or 'none'})")
    cycle = find_cycle({n: list(s.depends_on) for n, s in services.items()})
    if cycle:
        raise ValueError(f"services.{cycle[0]}.depends_on: dependency cycle {' -> '.join(cycle)}")


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle in `graph` (node -> nodes it depends on) as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                return [*path[path.index(m):], m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state and (found := visit(n)):
            return found
    return None


@dataclass(frozen=True)
class Node:
    kind: str  # "datastore" | "service"
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Scope:
    """What a recovery acts on: the requested names and everything they depend on."""

    requested: tuple[str, ...]
    datastores: tuple[str, ...]  # inventory order
    services: tuple[str, ...]  # map order
    order: tuple[Node, ...]  # the restore order

    def added(self) -> list[str]:
        """Dependencies the map added to the requested names."""
        return [n.name for n in self.order if n.name not in self.requested]


def closure(services: Mapping[str, ServiceSpec], datastores: Sequence[str], requested: Iterable[str]
            ) -> tuple[list[str], list[str]]:
    """(datastores, services) a scope needs: each requested service, the services it depends on
    (transitively) and every datastore they use; requested datastores stand for themselves.
    Raises ValueError for a name that is neither."""
    want_ds: set[str] = set()
    want_svc: set[str] = set()
    stack = []
    for name in requested:
        if name in services:
            stack.append(name)
        elif name in datastores:
            want_ds.add(name)
        else:
            raise ValueError(f"unknown service or datastore {name!r} (services: {', '.join(services) or 'none'}; "
                             f"datastores: {', '.join(datastores)})")
    while stack:
        s = stack.pop()
        if s in want_svc:
            continue
        want_svc.add(s)
        want_ds.update(services[s].uses())
        stack.extend(services[s].depends_on)
    return [d for d in datastores if d in want_ds], [s for s in services if s in want_svc]


def restore_order(services: Mapping[str, ServiceSpec], datastores: Sequence[str], requested: Iterable[str]) -> Scope:
    """The scope of `requested` in restore order: a node only after everything it depends on; among the
    nodes whose dependencies are done, a service first (it comes back as early as possible), then the
    earliest in inventory order."""
    requested = tuple(requested)
    ds, svc = closure(services, datastores, requested)
    rank = {("datastore", d): i for i, d in enumerate(datastores)}
    rank.update({("service", s): i for i, s in enumerate(services)})
    deps: dict[Node, set[Node]] = {Node("datastore", d): set() for d in ds}
    for s in svc:
        deps[Node("service", s)] = {Node("datastore", d) for d in services[s].uses()} | \
            {Node("service", x) for x in services[s].depends_on}
    users: dict[Node, list[Node]] = {n: [] for n in deps}
    for n, ds_ in deps.items():
        for d in ds_:
            users[d].append(n)
    waiting = {n: len(d) for n, d in deps.items()}

    def key(n: Node) -> tuple[int, int, str]:
        return (0 if n.kind == "service" else 1, rank[(n.kind, n.name)], n.name)

    ready = [(key(n), n) for n, c in waiting.items() if c == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for u in users[n]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, (key(u), u))
    if len(order) != len(deps):  # check_map rejects cycles; a hand-built map may still have one
        left = [n.name for n in deps if n not in order]
        raise ValueError(f"services: dependency cycle among {', '.join(left)}")
    return Scope(requested=requested, datastores=tuple(ds), services=tuple(svc), order=tuple(order))
