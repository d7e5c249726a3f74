"""The config engine's heartbeat commit (a root commit on refs/lifeboat/heartbeat/<datastore>, its time in
the message) and the bundle's file name. Pure logic."""

from __future__ import annotations

from datetime import UTC, datetime

BUNDLE = "config.bundle"
IDENTITY = {"GIT_AUTHOR_NAME": "Lifeboat", "GIT_AUTHOR_EMAIL": "lifeboat@localhost",
            "GIT_COMMITTER_NAME": "Lifeboat", "GIT_COMMITTER_EMAIL": "lifeboat@localhost"}
HEARTBEAT_MESSAGE = "lifeboat heartbeat "


def heartbeat_time(message: str) -> datetime | None:
    """The time in a heartbeat commit's message (None for any other message)."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    if not first.startswith(HEARTBEAT_MESSAGE):
        return None
    t = datetime.fromisoformat(first[len(HEARTBEAT_MESSAGE):].strip())
    return t if t.tzinfo else t.replace(tzinfo=UTC)
