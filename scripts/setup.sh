#!/usr/bin/env bash
# Create .venv and install the pinned dependencies (idempotent). Usage: scripts/setup.sh [requirements file]
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
python3 -m venv .venv
# Re-install only when the requirements changed since the last successful install.
stamp=".venv/.installed-$(cat requirements*.txt pyproject.toml | sha1sum | cut -c1-12)-$(basename "$req")"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$req"
  # The project itself (editable: dip/ and ui/ importable from anywhere; no sys.path edits).
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi
