# Sourced by scripts/serve and scripts/test: make .venv with the locked dependencies
# (requirements.txt; requirements-dev.txt for "dev") and chargegate installed editable. Installs
# again when the lock or pyproject.toml is newer than the last install (docs/dependencies.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras="${1:-}"
lock="requirements${extras:+-$extras}.txt"
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$lock" ]; then
  echo "no lock file $lock for extras '$extras' (docs/dependencies.md)" >&2
  exit 1
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --require-hashes -r "$lock"
  .venv/bin/python -m pip install --quiet --no-deps -e .
  # A dependency added to pyproject.toml but not to the lock shows up here, not at import time.
  if ! broken="$(.venv/bin/python -m pip check 2>&1)"; then
    echo "$broken" >&2
    echo "$lock does not satisfy pyproject.toml: regenerate it (docs/dependencies.md)" >&2
    exit 1
  fi
  touch "$stamp"
fi
