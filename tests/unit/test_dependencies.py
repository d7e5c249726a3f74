"""The dependency map: validated when the inventory loads (errors name the field), and the restore
order it implies (dependencies first, services as early as their dependencies allow)."""

from pathlib import Path

import pytest

from lifeboat.dependencies import Node, ServiceSpec, check_map, closure, find_cycle, restore_order
from lifeboat.errors import InventoryError
from lifeboat.inventory import load_inventory, parse_inventory

SHIPPED = Path(__file__).resolve().parents[2] / "include" / "inventory.yaml"
TEXT = SHIPPED.read_text()
ENGINES = {"postgres": "postgres", "redis": "redis", "mongodb": "mongodb", "elasticsearch": "elasticsearch",
           "uploads": "objects", "images": "images", "platform_config": "config", "community_k8s": "kubernetes"}
DS = list(ENGINES)


def svc(**kw) -> ServiceSpec:
    return ServiceSpec(**kw)


MAP = {
    "auth-service": svc(datastores=["postgres", "redis"]),
    "api-gateway": svc(depends_on=["auth-service"], datastores=["postgres", "redis", "mongodb", "elasticsearch"],
                       buckets=["uploads"]),
    "frontend": svc(depends_on=["api-gateway"], images=["images"], config=["platform_config"]),
}


def test_shipped_inventory_has_a_valid_dependency_map():
    inv = load_inventory(SHIPPED)
    assert inv.services["api-gateway"].depends_on == ["auth-service"]
    order = restore_order(inv.services, list(inv.datastores), ["api-gateway"])
    assert [str(n) for n in order.order] == ["postgres", "redis", "auth-service", "elasticsearch", "mongodb",
                                             "api-gateway"]


def test_restore_order_puts_every_dependency_first_and_services_as_early_as_possible():
    scope = restore_order(MAP, DS, ["frontend"])
    names = [str(n) for n in scope.order]
    assert names == ["postgres", "redis", "auth-service", "mongodb", "elasticsearch", "uploads", "api-gateway",
                     "images", "platform_config", "frontend"]
    pos = {n: i for i, n in enumerate(names)}
    for name, s in MAP.items():
        for dep in [*s.uses(), *s.depends_on]:
            assert pos[dep] < pos[name], (dep, name)
    assert scope.services == ("auth-service", "api-gateway", "frontend")
    assert set(scope.added()) == set(names) - {"frontend"}


def test_partial_scope_restores_only_what_the_service_needs():
    scope = restore_order(MAP, DS, ["auth-service"])
    assert [(n.kind, n.name) for n in scope.order] == [("datastore", "postgres"), ("datastore", "redis"),
                                                       ("service", "auth-service")]
    assert scope.datastores == ("postgres", "redis") and scope.added() == ["postgres", "redis"]


def test_a_datastore_scope_is_only_that_datastore():
    assert restore_order(MAP, DS, ["mongodb"]).order == (Node("datastore", "mongodb"),)
    assert closure(MAP, DS, ["redis", "auth-service"]) == (["postgres", "redis"], ["auth-service"])


def test_unknown_scope_name_is_named():
    with pytest.raises(ValueError, match="unknown service or datastore 'api'"):
        restore_order(MAP, DS, ["api"])


@pytest.mark.parametrize(("services", "message"), [
    ({"a": svc(datastores=["mongo"])}, "services.a.datastores[0]: unknown datastore 'mongo'"),
    ({"a": svc(datastores=["redis", "redis"])}, "services.a.datastores[1]: 'redis' is listed twice"),
    ({"a": svc(buckets=["postgres"])}, "services.a.buckets[0]: 'postgres' is a postgres datastore; buckets lists "
                                       "objects datastores"),
    ({"a": svc(datastores=["uploads"])}, "services.a.datastores[0]: 'uploads' is a objects datastore: list it "
                                         "under buckets"),
    ({"a": svc(depends_on=["b"])}, "services.a.depends_on[0]: unknown service 'b'"),
    ({"a": svc(depends_on=["a"])}, "services.a.depends_on[0]: a service cannot depend on itself"),
    ({"a": svc(depends_on=["b"]), "b": svc(depends_on=["c"]), "c": svc(depends_on=["a"])},
     "services.a.depends_on: dependency cycle a -> b -> c -> a"),
    ({"redis": svc()}, "services.redis: 'redis' is also a datastore name"),
    ({"a": svc(datastores=["redis"], env={"postgres": "DATABASE_URL"})},
     "services.a.env.postgres: 'postgres' is not a datastore this service uses"),
])
def test_check_map_names_the_field(services, message):
    with pytest.raises(ValueError) as err:
        check_map(services, ENGINES)
    assert str(err.value).startswith(message), str(err.value)


def test_find_cycle():
    assert find_cycle({"a": ["b"], "b": []}) is None
    assert find_cycle({"x": ["y"], "y": ["z"], "z": ["y"]}) == ["y", "z", "y"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    datastores: [postgres, redis]\n    secret: auth-service-datastores",
     "    datastores: [postgres, rediss]\n    secret: auth-service-datastores",
     "include/inventory.yaml: services.auth-service.datastores[1]: unknown datastore 'rediss'"),
    ("    depends_on: [api-gateway]", "    depends_on: [api-gateway, frontend]",
     "include/inventory.yaml: services.frontend.depends_on[1]: a service cannot depend on itself"),
    ("    depends_on: [auth-service]", "    depends_on: [frontend]",
     "include/inventory.yaml: services.api-gateway.depends_on: dependency cycle api-gateway -> frontend -> "
     "api-gateway"),
    ("  frontend:\n    depends_on: [api-gateway]", "  frontend:\n    depends_on: [api-gateway]\n    uses: [x]",
     "include/inventory.yaml: services.frontend.uses: unknown field"),
])
def test_inventory_dependency_map_errors_name_file_and_field(old, new, expected):
    assert old in TEXT, old
    with pytest.raises(InventoryError) as err:
        parse_inventory(TEXT.replace(old, new, 1), source="include/inventory.yaml")
    assert expected in str(err.value), str(err.value)
