# Sourced by scripts/*: make a venv (./.venv, or $QRVERIFY_VENV) with qrverify installed from
# this checkout. QRVERIFY_EXTRAS selects optional dependency groups (e.g. "test,bench").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
VENV=${QRVERIFY_VENV:-$ROOT/.venv}
if [[ ! -x $VENV/bin/python ]]; then
  echo "==> creating $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
fi
extras=${QRVERIFY_EXTRAS:-}
target="$ROOT"
[[ -n $extras ]] && target="$ROOT[$extras]"
echo "==> installing qrverify${extras:+[$extras]} (builds the Cython extension)" >&2
"$VENV/bin/python" -m pip install -q "$target"
