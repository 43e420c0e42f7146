#!/usr/bin/env bash
# Install the real third-party connectors the connector-hub tests run as subprocesses.
#
# Each gets its own venv under .venv-connectors/ (their pins conflict with the hub's).
# Idempotent and fast when already installed: a stamp file records the pinned spec, and a
# venv whose stamp matches is left alone. Usage: scripts/install_test_connectors.sh [ROOT]
set -euo pipefail

ROOT="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
PY="${PY:-python3.11}"
DEST="$ROOT/.venv-connectors"

install_connector() {
    local name="$1" spec="$2" executable="$3"
    local venv="$DEST/$name" stamp="$DEST/$name/.installed"
    if [[ -x "$venv/bin/$executable" && -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
        return 0
    fi
    echo "installing $spec into $venv" >&2
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec"
    test -x "$venv/bin/$executable"
    printf '%s' "$spec" > "$stamp"
}

mkdir -p "$DEST"
install_connector faker "airbyte-source-faker==7.2.1" source-faker &
faker_pid=$!
install_connector tap-jsonl "tap-jsonl==0.3.1" tap-jsonl &
jsonl_pid=$!
install_connector target-jsonl "target-jsonl==0.1.4" target-jsonl &
target_jsonl_pid=$!
install_connector target-csv "meltanolabs-target-csv==0.5.0" target-csv &
target_csv_pid=$!
status=0
wait "$faker_pid" || status=1
wait "$jsonl_pid" || status=1
wait "$target_jsonl_pid" || status=1
wait "$target_csv_pid" || status=1
exit "$status"
