# Sourced by scripts/*: make a venv (./.venv, or $QRVERIFY_VENV) with qrverify installed from
# this checkout. QRVERIFY_EXTRAS selects optional dependency groups (e.g. "test,bench").
#
# The install is a regular (non-editable) one: the tests check that they run against it.
# The build is skipped when nothing it is made from changed since the last one (a stamp of
# the sources' hash in the venv). For ./.venv the compiled modules are also copied into the
# checkout's fastpath/, so `python` started in the repository root can import the checkout
# itself (the README's Python example); they are rebuilt and copied again on every change.
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
stamp_file="$VENV/.qrverify-build-stamp"
stamp=$("$VENV/bin/python" "$ROOT/scripts/_srchash.py" "$ROOT" "extras=$extras" \
        "debug=${QRVERIFY_DEBUG:-}")
in_place=0
[[ $VENV -ef $ROOT/.venv ]] && in_place=1
have_in_place() {
  local m
  for m in _decode _hashset _engine; do
    compgen -G "$ROOT/fastpath/$m.*.so" >/dev/null || return 1
  done
}
if [[ -f $stamp_file && $(<"$stamp_file") == "$stamp" ]] && { ((in_place == 0)) || have_in_place; }; then
  echo "==> qrverify${extras:+[$extras]} is up to date in $VENV (sources unchanged)" >&2
else
  echo "==> installing qrverify${extras:+[$extras]} (builds the Cython extension)" >&2
  rm -f "$stamp_file"
  "$VENV/bin/python" -m pip install -q "$target"
  if ((in_place)); then
    # the same compiled modules in the checkout, for code run from the repository root
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
    rm -f "$ROOT"/fastpath/*.so
    cp "$site"/fastpath/*.so "$ROOT/fastpath/"
  fi
  echo "$stamp" > "$stamp_file"
fi
