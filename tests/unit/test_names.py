"""lifeboat.names: the one "must match this pattern" check of the inventory models."""

import pytest

from lifeboat.names import must_match, names_matching


def test_must_match_returns_the_value_or_names_it_in_the_error():
    assert must_match(r"[a-z]+", "abc", "{!r} bad") == "abc"
    with pytest.raises(ValueError, match=r"^'ab1' bad$"):
        must_match(r"[a-z]+", "ab1", "{!r} bad")
    with pytest.raises(ValueError, match="bad"):  # the whole value must match, not a prefix
        must_match(r"[a-z]+", "abc\n", "{!r} bad")


def test_names_matching_checks_the_pattern_then_the_refusal():
    refuse = lambda n: f"{n!r} is reserved" if n.startswith("x") else None  # noqa: E731
    assert names_matching(["a", "b"], r"[a-z]", "{!r} bad", refuse) == ["a", "b"]
    with pytest.raises(ValueError, match="'1' bad"):
        names_matching(["a", "1"], r"[a-z]", "{!r} bad", refuse)
    with pytest.raises(ValueError, match="'x' is reserved"):
        names_matching(["a", "x"], r"[a-z]", "{!r} bad", refuse)
