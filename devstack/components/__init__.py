"""Optional devstack components, one module per server (redis, elasticsearch, ...).

Each module defines NAME and:
    up(state_dir: Path, say) -> dict[str, str]   idempotent; env vars to add to <state>/env
    down(state_dir: Path, say) -> str            stop; keep data
    status(state_dir: Path) -> dict              at least {"running": bool}
Keep state under <state_dir>/<NAME>/ and bind 127.0.0.1 only.
"""
