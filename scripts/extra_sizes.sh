#!/usr/bin/env bash
# Measures the disk size of a fresh virtualenv holding litecls with each extra (for the README).
# Usage: scripts/extra_sizes.sh WHEEL [EXTRA...]   (default extras: none video plots samples zoo all)
set -euo pipefail
wheel=$1
shift
extras=("$@")
[ ${#extras[@]} -gt 0 ] || extras=(core video plots samples zoo all)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| install | environment size (MB) |\n|---|---:|\n'
for extra in "${extras[@]}"; do
  "$python" -m venv "$work/venv"
  spec=$wheel
  [ "$extra" = core ] || spec="$wheel[$extra]"
  pins=()
  case $extra in zoo|train|all) pins=(torch==2.13.0) ;; esac
  "$work/venv/bin/python" -m pip install -q "$spec" "${pins[@]}" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
  label="pip install litecls"
  [ "$extra" = core ] || label="pip install 'litecls[$extra]'"
  printf '| %s | %s |\n' "$label" "$(du -sm "$work/venv" | cut -f1)"
  rm -rf "$work/venv"
done
