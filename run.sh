#!/usr/bin/env bash
# One command per job, from a fresh machine:
#   bash run.sh app     set up, then start the app (streamlit run app.py); it prints the address to open.
#                       Streamlit's options follow, with or without a "--": bash run.sh app --server.port 8600
#   bash run.sh test    set up, then run the test suite (what CI runs)
#   bash run.sh setup   only set up: a virtual environment in .venv with the pinned packages
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "run.sh: first run: creating $VENV and installing the pinned packages (about 2 minutes, 3.3 GB)..." >&2
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the pins changed since the last install.
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "run.sh: installing the pinned packages into $VENV (requirements changed or first run)..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$want" > "$stamp"
    echo "run.sh: set up." >&2
  fi
}

case "${1:-}" in
  setup) setup ;;
  app)
    setup; shift
    # `streamlit run app.py -- X` would hand X to the page script, not to Streamlit: options are Streamlit's.
    if [ "${1:-}" = "--" ]; then shift; fi
    exec "$VENV/bin/python" -m streamlit run app.py "$@" ;;
  test) setup; shift; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash run.sh {app|test|setup} [extra arguments]" >&2; exit 2 ;;
esac
