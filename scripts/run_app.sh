#!/usr/bin/env bash
# Set up (first time) and start the Streamlit app on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
exec .venv/bin/streamlit run streamlit_app.py "$@"
