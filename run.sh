#!/usr/bin/env bash
# One command per job, from a fresh machine:
#   bash run.sh app     set up, then start the app (streamlit run app.py)
#   bash run.sh test    set up, then run the test suite (what CI runs)
#   bash run.sh setup   only set up: a virtual environment in .venv with the pinned packages
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the pins changed since the last install.
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$want" > "$stamp"
  fi
}

case "${1:-}" in
  setup) setup ;;
  app) setup; shift; exec "$VENV/bin/python" -m streamlit run app.py "$@" ;;
  test) setup; shift; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash run.sh {app|test|setup} [extra arguments]" >&2; exit 2 ;;
esac
