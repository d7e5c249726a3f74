"""What an engine of a datastore kept in two regions needs beyond the `Datastore` flow, written once:

- `RegionalDatastore[MyOptions]`: the engine declares its options model as the type parameter (so
  `self.options` is typed; the registry entry's model must be the same class, checked when the class
  is defined), and gets `other_region(region)` / `standby_region` and `latest_only(target, why)` for
  backups that restore only as they were taken.
- `@per_region`: a method `build(self, region) -> Client` becomes `self.client(region=None)`, which
  builds one client per region (default: the datastore's own region) and keeps it on the instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, get_args, overload

from lifeboat.datastores.base import Datastore
from lifeboat.datastores.options import EngineOptions
from lifeboat.errors import Refused

OptionsT = TypeVar("OptionsT", bound=EngineOptions)
C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)


class RegionalDatastore(Datastore, Generic[OptionsT]):
    options: OptionsT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "engine" not in cls.__dict__:
            return
        declared = [a for b in getattr(cls, "__orig_bases__", ()) for a in get_args(b) if isinstance(a, type)]
        if declared and declared[0] is not cls.Options:
            raise TypeError(f"{cls.__name__} declares options {declared[0].__name__} but the registry entry of "
                            f"engine {cls.engine!r} names {cls.Options.__name__}")

    def other_region(self, region: str | None = None) -> str:
        """The other one of the inventory's two regions (of the datastore's own region by default)."""
        regions = self.ctx.inventory.regions
        return regions.standby if (region or self.region) == regions.primary else regions.primary

    @property
    def standby_region(self) -> str:
        return self.other_region(self.region)

    @staticmethod
    def latest_only(target: str | None, why: str) -> None:
        """Refuse a restore target other than 'latest' (the backup restores as it was taken: `why`)."""
        if target not in ("latest", "", None):
            raise Refused(f"restore target {target!r}: {why}")


class RegionClient(Protocol[C_co]):
    def __call__(self, region: str | None = None) -> C_co: ...


class per_region(Generic[C]):
    """`@per_region def client(self, region: str) -> Client`: `self.client(region=None)` builds the
    region's client once (default region: the datastore's own) and keeps it on the instance."""

    def __init__(self, build: Callable[[Any, str], C]):
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> per_region[C]: ...
    @overload
    def __get__(self, obj: Datastore, owner: type | None = None) -> RegionClient[C]: ...

    def __get__(self, obj: Datastore | None, owner: type | None = None) -> per_region[C] | RegionClient[C]:
        if obj is None:
            return self
        cache: dict[str, C] = obj.__dict__.setdefault(f"_per_region_{self.name}", {})
        build = self.build

        def client(region: str | None = None) -> C:
            region = region or obj.region
            if region not in cache:
                cache[region] = build(obj, region)
            return cache[region]

        client.__doc__ = self.__doc__
        return client
