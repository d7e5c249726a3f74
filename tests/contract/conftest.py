"""The contract suite's fixture: one adapter per engine (tests/contract/adapters/<engine>.py)."""

from __future__ import annotations

import importlib

import pytest

from tests.contract.adapters import ADAPTERS, Adapter


@pytest.fixture(params=ADAPTERS)
def adapter(request, stack_env, unique) -> Adapter:
    module = importlib.import_module(f"tests.contract.adapters.{request.param}")
    cls = next(v for k, v in vars(module).items() if k.endswith("Adapter") and k != "Adapter")
    for name in cls.fixtures:  # first, so they outlive the adapter's cleanup
        request.getfixturevalue(name)
    a = cls(request, unique)
    yield a
    a.cleanup()
