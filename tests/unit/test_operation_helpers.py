"""The helpers failover and recovery share (issue 11): the confirmation check, the error's first line,
the outcome gate before anything changed."""

import pytest

from lifeboat.errors import Refused
from lifeboat.failover.facts import first_line
from lifeboat.failover.recording import gate_outcome
from lifeboat.failover.timeline import require_confirm


def test_require_confirm_names_the_parameter_and_what_was_typed():
    require_confirm({"confirm": " eu-b "}, "eu-b", kind="failover", what="target region", nothing="x")
    with pytest.raises(Refused, match=r"confirm: a real failover .* 'eu-b'; the confirmation is missing\. Nothing"):
        require_confirm({}, "eu-b", kind="failover", what="target region", nothing="Nothing was changed.")
    with pytest.raises(Refused, match=r"acting region typed exactly: 'eu-a'; the confirmation is 'eu-b'"):
        require_confirm({"confirm": "eu-b"}, "eu-a", kind="recover", what="acting region", nothing="")


def test_first_line_keeps_the_type_and_first_line_and_masks_the_secret():
    assert first_line(RuntimeError("boom\nmore")) == "RuntimeError: boom"
    assert first_line(ValueError("")) == "ValueError: "
    assert first_line(OSError("auth pw123 failed"), "pw123") == "OSError: auth *** failed"
    assert len(first_line(RuntimeError("x" * 1000))) == 400


def _refuse(kind, params):
    raise Refused("reason: required")


def test_gate_outcome_before_and_past_approval():
    approve = {"chosen_options": ["Approve"]}
    assert gate_outcome("k", {}, {}, _refuse, lambda: True) == ("refused", "reason: required")
    assert gate_outcome("k", {}, {"guard": {}}, _refuse, lambda: True)[0] == "blocked"
    assert gate_outcome("k", {}, {"guard": {"dry_run": True}, "plan": {}}, _refuse, lambda: True)[0] == "dry_run"
    assert gate_outcome("k", {}, {"guard": {"dry_run": True}, "plan": {}}, _refuse, lambda: False)[0] == \
        "dry_run_failed"
    assert gate_outcome("k", {}, {"guard": {}, "plan": {}}, _refuse, lambda: True)[0] == "not_approved"
    rejected = {"chosen_options": ["Reject"], "responded_by_user": {"name": "ana"}}
    assert gate_outcome("k", {}, {"guard": {}, "plan": {}, "approval": rejected}, _refuse, lambda: True) == \
        ("rejected", "rejected by ana: nothing was changed")
    assert gate_outcome("k", {}, {"guard": {}, "plan": {}, "approval": approve}, _refuse, lambda: True) is None
