#!/usr/bin/env bash
# Idempotent bootstrap for the Lifeboat devstack on Debian 12.
#
#   * apt packages from packages.txt (apt-get update only when something is missing)
#   * a virtualenv at ${LIFEBOAT_VENV:-<repo>/.venv} with requirements-dev.txt
#     (pip skipped when the stamp matches the sha256 of requirements*.txt)
#   * the Elasticsearch distribution (pinned download) and the Go programs of the local stack
#     (devstack/binaries.py: built once per version, cached in ~/.cache/lifeboat/bin)
#
# Run as root (CI) or as a user with sudo.  Safe to re-run; a no-op takes ~1s.
# Debian's own cluster (15/main on :5432) and redis-server service are left alone:
# the devstack never uses default ports.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
PYTHON="${PYTHON:-python3}"
PG_BIN="${LIFEBOAT_PG_BIN:-/usr/lib/postgresql/15/bin}"

log() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }
trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
candidate() {  # prints the apt candidate version, empty when none (virtual/unknown)
  LC_ALL=C apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (re-run as root or install sudo)"
  fi
}

# ---------------------------------------------------------------- apt packages
command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script targets Debian 12"
[ -f "$REPO/packages.txt" ] || die "missing $REPO/packages.txt"

entries=()
while IFS= read -r line || [ -n "$line" ]; do
  line="$(trim "${line%%#*}")"
  [ -n "$line" ] && entries+=("$line")
done < "$REPO/packages.txt"

missing=()
for entry in "${entries[@]}"; do
  IFS='|' read -ra alts <<< "$entry"
  ok=no
  for alt in "${alts[@]}"; do
    if installed "$(trim "$alt")"; then ok=yes; break; fi
  done
  [ "$ok" = yes ] || missing+=("$entry")
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "apt: all ${#entries[@]} packages present"
else
  log "apt: missing ${missing[*]} -> apt-get update"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  to_install=()
  for entry in "${missing[@]}"; do
    IFS='|' read -ra alts <<< "$entry"
    pick=""
    for alt in "${alts[@]}"; do
      alt="$(trim "$alt")"
      if [ -n "$(candidate "$alt")" ]; then pick="$alt"; break; fi
    done
    [ -n "$pick" ] || die "apt: none of '$entry' is installable on this system"
    to_install+=("$pick")
  done
  log "apt: installing ${to_install[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq --no-install-recommends \
    "${to_install[@]}" >/dev/null
  log "apt: installed ${#to_install[@]} package(s)"
fi

[ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (package postgresql-15)"
command -v pgbackrest >/dev/null 2>&1 || die "pgbackrest not on PATH after install"
log "tools: $("$PG_BIN/postgres" --version), $(pgbackrest version)"

# ---------------------------------------------------------------- virtualenv
if [ -x "$VENV/bin/python" ]; then
  log "venv: $VENV exists ($("$VENV/bin/python" --version 2>&1))"
else
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
  log "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi

stamp="$VENV/.lifeboat-requirements.sha256"
# constraints.txt (pins of a known-good resolve), when present, is honoured and part of the stamp
pip_constraints=()
stamp_files=(requirements*.txt)
if [ -f "$REPO/constraints.txt" ]; then
  pip_constraints=(-c constraints.txt)
  stamp_files+=(constraints.txt)
fi
want="$(cd "$REPO" && sha256sum "${stamp_files[@]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "pip: requirements unchanged (stamp $want), skipping"
else
  log "pip: installing requirements-dev.txt ${pip_constraints[*]} into $VENV (a few minutes on a fresh venv)"
  (cd "$REPO" && "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q \
      -r requirements-dev.txt "${pip_constraints[@]}") || die "pip install failed (see output above)"
  printf '%s\n' "$want" > "$stamp"
  log "pip: done, stamp written"
fi
[ -x "$VENV/bin/moto_server" ] || die "moto_server missing in $VENV/bin (moto[server] in requirements-dev.txt?)"

# ---------------------------------------------------------------- Elasticsearch prerequisites
# The local Elasticsearch node needs a JDK >= 21 (Debian 12 has none: Temurin in /usr/lib/jvm or
# JAVA_HOME); the zip comes from Maven Central, pinned by SHA-256 in devstack/pins.toml.
"$VENV/bin/python" "$REPO/devstack/components/elasticsearch.py" check >/dev/null \
  || die "Elasticsearch prerequisites missing (see above): install a JDK >= 21"
log "elasticsearch: JDK >= 21 present"
(cd "$REPO" && "$VENV/bin/python" devstack/pins.py fetch elasticsearch >/dev/null) \
  || die "Elasticsearch distribution download failed (see above)"
log "elasticsearch: distribution $(cd "$REPO" && "$VENV/bin/python" devstack/pins.py list | awk '$1=="elasticsearch"{print $2}') present, sha256 verified"

# ---------------------------------------------------------------- Go programs (devstack/binaries.py)
# kube-apiserver/-controller-manager/-scheduler, kwok, velero + its AWS plugin, SeaweedFS, toxiproxy and
# FerretDB, each built once per version from its wrapper module under devstack/go/ (needs Go >= 1.26,
# as on these machines in /usr/local/go; the main module's zip is checked against devstack/pins.toml
# before building) and cached in ~/.cache/lifeboat/bin: about 20 minutes on a fresh 2-core machine
# (see README, "First run"), "cached, skipped" afterwards. LIFEBOAT_GO_TOOLS="name ..." limits the set;
# LIFEBOAT_GO_JOBS (default 2) is how many wrapper modules build at once.
t_go=$SECONDS
# shellcheck disable=SC2086  # LIFEBOAT_GO_TOOLS is a list of names
(cd "$REPO" && "$VENV/bin/python" devstack/binaries.py ensure ${LIFEBOAT_GO_TOOLS:-all} --jobs "${LIFEBOAT_GO_JOBS:-2}") \
  || die "building the Go programs failed (see above; each build log is beside its binary in ~/.cache/lifeboat/bin)"
log "go programs: ready in $((SECONDS - t_go))s"

log "ok in $((SECONDS / 60))m$((SECONDS % 60))s: venv=$VENV  next: make stack-up"
