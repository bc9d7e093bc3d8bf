#!/usr/bin/env bash
# Usage: bench/run.sh [bench/speed.py options]      (or: make bench)
#   The one-shot sync benchmark: mailtide against mbsync and OfflineIMAP (where installed)
#   on the lab Dovecot; see bench/README.md and `bench/speed.py --help`.  The settings of the
#   earlier shell version still work as environment variables:
#     N FOLDERS STEPS TOOLS REPS SETTLE TIMEOUT BENCH_DIR MAILTIDE LAB OUT
#   e.g. N=50000 REPS=3 STEPS="initial nochange server local" bash bench/run.sh
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$REPO/.venv/bin/python
[ -x "$PY" ] || { echo "bench: $PY not found: run 'make venv'" >&2; exit 2; }
bash "$REPO/scripts/deps.sh" >&2 || exit 2  # dovecot-imapd, isync, offlineimap3, ...
exec "$PY" "$REPO/bench/speed.py" "$@"
