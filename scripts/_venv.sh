# Sourced by scripts/*: make ./.venv with qrverify installed from this checkout.
# QRVERIFY_EXTRAS selects optional dependency groups (e.g. "test" or "test,bench").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
if [[ ! -x $ROOT/.venv/bin/python ]]; then
  echo "==> creating $ROOT/.venv" >&2
  "$PY" -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
fi
extras=${QRVERIFY_EXTRAS:-}
target="$ROOT"
[[ -n $extras ]] && target="$ROOT[$extras]"
echo "==> installing qrverify${extras:+[$extras]} (builds the Cython extension)" >&2
"$ROOT/.venv/bin/python" -m pip install -q "$target"
