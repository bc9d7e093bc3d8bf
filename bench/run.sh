#!/usr/bin/env bash
# Usage: bench/run.sh            (or: make bench)
#   mailtide against mbsync on the same Dovecot build and the same corpus, in one run.
#   For each tool in $TOOLS: a fresh lab Dovecot (../shared/lab/dovecot-up.sh), populated
#   with populate.py --folders $FOLDERS --messages $N --seed 1 (byte-identical each time),
#   then the steps in $STEPS, each sync under `/usr/bin/time -v` (wall, max RSS, CPU) and
#   each followed by `labtool.py check --layout mbsync` (counts + S/F/R/D/T per Message-ID):
#     initial   first sync into an empty Maildir (mailtide: layout fs; mbsync: Verbatim)
#     nochange  re-sync with nothing changed                           ($REPS times)
#     server    labtool mutate (100 flag toggles + 100 new on the server), sync
#     local     labtool local-flags (100 local flag renames), sync, check --expect
#     changes   mutate + local-flags, ONE sync, check --expect (expectation merged per flag
#               with the server's toggles by bench/expect.py)
#   Writes one JSON line per measurement to bench/results/run-STAMP.jsonl and a markdown
#   table (tools side by side, ratios) to bench/results/run-STAMP.md; prints the table.
#   Plain IMAP on 127.0.0.1 for both tools, like the lab. Exit 1 if any sync failed or
#   any check found a difference.
# Env:
#   N=10000 FOLDERS=20 STEPS="initial nochange changes" TOOLS="mailtide mbsync" REPS=1
#   TIMEOUT=600 (per sync)  SETTLE=1.1 (seconds to wait before every re-sync: mbsync waits
#   out the current second when a Maildir changed within it, see the lab README; waiting
#   measures both tools' steady state instead of that guard)
#   BENCH_DIR=/tmp/mailtide-bench (scratch: servers, Maildirs, state; wiped per tool)
#   LAB=../shared/lab  MAILTIDE=.venv/bin/mailtide  OUT=bench/results/run-STAMP.jsonl
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$(cd "${LAB:-$REPO/../shared/lab}" 2>/dev/null && pwd) || {
  echo "bench: the lab is not at ${LAB:-$REPO/../shared/lab} (set LAB=...)" >&2; exit 2; }
export LAB
N=${N:-10000}
FOLDERS=${FOLDERS:-20}
STEPS=${STEPS:-initial nochange changes}
TOOLS=${TOOLS:-mailtide mbsync}
REPS=${REPS:-1}
TIMEOUT=${TIMEOUT:-600}
SETTLE=${SETTLE:-1.1}
BENCH_DIR=${BENCH_DIR:-/tmp/mailtide-bench}
MAILTIDE=${MAILTIDE:-$REPO/.venv/bin/mailtide}
PY=$REPO/.venv/bin/python
[ -x "$PY" ] || PY=python3
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$REPO/bench/results/run-$STAMP.jsonl}
MD=${OUT%.jsonl}.md
SRV=$BENCH_DIR/server

log() { echo "[bench $(date +%T)] $*" >&2; }
die() { log "$*"; exit 2; }

for step in $STEPS; do
  case "$step" in initial | nochange | server | local | changes) ;; *) die "unknown step '$step'" ;; esac
done
for tool in $TOOLS; do
  case "$tool" in mailtide | mbsync) ;; *) die "unknown tool '$tool' (mailtide, mbsync)" ;; esac
done
case "$BENCH_DIR" in "$REPO" | "$REPO"/*) die "BENCH_DIR must be outside the repository" ;; esac

extra=()
[[ " $TOOLS " == *" mbsync "* ]] && extra+=(isync)
bash "$REPO/scripts/deps.sh" "${extra[@]}" >&2 || exit 2
if [[ " $TOOLS " == *" mailtide "* ]] && [ ! -x "$MAILTIDE" ]; then
  die "$MAILTIDE not found: run 'make venv' (or set MAILTIDE=...)"
fi

mkdir -p "$BENCH_DIR" "$(dirname "$OUT")"
trap 'bash "$LAB/dovecot-down.sh" "$SRV" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM

json_str() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
secs() { # "h:mm:ss" or "m:ss.cc" from time -v -> seconds
  awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }'
}
lab() { "$PY" "$LAB/labtool.py" "$@" --port "$IMAP_PORT" --user "$IMAP_USER" --password "$IMAP_PASS"; }

server_fresh() { # a new server holding the corpus; sets IMAP_PORT, IMAP_USER, IMAP_PASS
  bash "$LAB/dovecot-down.sh" "$SRV" >/dev/null 2>&1 || true
  rm -rf "$SRV"
  bash "$LAB/dovecot-up.sh" "$SRV" >/dev/null || die "dovecot-up.sh failed"
  # shellcheck disable=SC1091
  . "$SRV/env"
  local t0 t1 digest
  t0=$(date +%s.%N)
  "$PY" "$LAB/populate.py" --port "$IMAP_PORT" --user "$IMAP_USER" --password "$IMAP_PASS" \
    --folders "$FOLDERS" --messages "$N" --seed 1 >/dev/null || die "populate.py failed"
  t1=$(date +%s.%N)
  # Proof that every tool saw the same corpus: bodies, flags, INTERNALDATEs per folder.
  digest=$(lab digest | sha256sum | cut -c1-16)
  echo "{\"kind\":\"populate\",\"tool\":\"$1\",\"n\":$N,\"folders\":$FOLDERS,\"wall\":$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'),\"digest\":\"$digest\"}" >>"$OUT"
  sync
}

write_mailtide_config() { # dir
  cat >"$1/config.toml" <<EOF
# written by bench/run.sh
[general]
state_dir = $(json_str "$1/state")

[account.bench]
local = "bench-local"
remote = "bench-remote"

[repository.bench-local]
type = "maildir"
path = $(json_str "$1/Mail")
layout = "fs"

[repository.bench-remote]
type = "imap"
host = "127.0.0.1"
port = $IMAP_PORT
tls = "none"
user = $(json_str "$IMAP_USER")
password = $(json_str "$IMAP_PASS")
EOF
}

FAILED=0
# measure tool dir step rep [check args...]: one timed sync + a check, one JSON line.
# Returns 0 when correct, 1 when the check found a difference, 2 when the sync failed.
measure() {
  local tool=$1 dir=$2 step=$3 rep=$4; shift 4
  local tf rc wall rss usr sys chk ok
  local cmd=()
  case "$tool" in
    mailtide) cmd=("$MAILTIDE" sync -c "$dir/config.toml") ;;
    # peer-run.sh writes mbsync's config and then execs mbsync, so time measures mbsync
    mbsync) cmd=(env "IMAP_USER=$IMAP_USER" "IMAP_PASS=$IMAP_PASS"
      bash "$LAB/peer-run.sh" mbsync "$dir/state" "$IMAP_PORT" "$dir/Mail") ;;
  esac
  tf=$(mktemp)
  /usr/bin/time -v -o "$tf" timeout -k 10 "$TIMEOUT" "${cmd[@]}" >"$dir/$step-$rep.log" 2>&1
  rc=$?
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$tf" | secs)
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
  usr=$(awk -F': ' '/User time/{print $2}' "$tf")
  sys=$(awk -F': ' '/System time/{print $2}' "$tf")
  rm -f "$tf"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    chk='{"ok": false, "problems": ["timeout"]}'
  else
    chk=$(lab check --maildir "$dir/Mail" --layout mbsync "$@" 2>&1 | tail -1)
    case "$chk" in "{"*) ;; *) chk="{\"ok\": false, \"problems\": [$(json_str "$chk")]}" ;; esac
  fi
  ok=false
  [ $rc -eq 0 ] && [[ "$chk" == *'"ok": true'* ]] && ok=true
  [ $ok = true ] || FAILED=1
  local err=null
  [ $rc -eq 0 ] || err=$(json_str "$(grep -v '^[[:space:]]*$' "$dir/$step-$rep.log" | tail -3 | paste -sd'|' | sed 's/|/ | /g')")
  echo "{\"kind\":\"sync\",\"tool\":\"$tool\",\"n\":$N,\"step\":\"$step\",\"rep\":$rep,\"rc\":$rc,\"wall\":${wall:-null},\"maxrss_kb\":${rss:-null},\"user\":${usr:-null},\"sys\":${sys:-null},\"correct\":$ok,\"error\":$err,\"check\":$chk}" >>"$OUT"
  log "$tool $step#$rep rc=$rc wall=${wall}s maxrss=${rss}KB correct=$ok"
  if [ $rc -ne 0 ]; then
    log "  last lines of $dir/$step-$rep.log: $(tail -3 "$dir/$step-$rep.log" | tr '\n' ' ')"
    return 2
  fi
  [ $ok = true ] || return 1
}

bench_tool() { # tool
  local tool=$1 dir=$BENCH_DIR/$1 step r
  log "=== $tool, N=$N, folders=$FOLDERS: fresh server"
  server_fresh "$tool"
  rm -rf "$dir"
  mkdir -p "$dir/Mail" "$dir/state"
  [ "$tool" = mailtide ] && write_mailtide_config "$dir"
  for step in $STEPS; do
    case "$step" in
      initial)
        measure "$tool" "$dir" initial 1
        [ $? -eq 2 ] && {
          log "$tool: initial sync failed; skipping its other steps"
          echo "{\"kind\":\"skipped\",\"tool\":\"$tool\",\"n\":$N,\"reason\":\"initial sync failed\"}" >>"$OUT"
          return 1
        }
        ;;
      nochange)
        for r in $(seq 1 "$REPS"); do
          sleep "$SETTLE"
          measure "$tool" "$dir" nochange "$r"
        done
        ;;
      server)
        for r in $(seq 1 "$REPS"); do
          lab mutate --flags 100 --new 100 --seed "$((100 + r))" >/dev/null
          sleep "$SETTLE"
          measure "$tool" "$dir" server "$r"
        done
        ;;
      local)
        for r in $(seq 1 "$REPS"); do
          lab local-flags --maildir "$dir/Mail" --layout mbsync --n 100 --seed "$((200 + r))" \
            --out "$dir/expect.json" >/dev/null
          sleep "$SETTLE"
          measure "$tool" "$dir" local "$r" --expect "$dir/expect.json"
        done
        ;;
      changes)
        for r in $(seq 1 "$REPS"); do
          "$PY" "$REPO/bench/expect.py" snapshot --port "$IMAP_PORT" --user "$IMAP_USER" \
            --password "$IMAP_PASS" --out "$dir/before.json"
          lab mutate --flags 100 --new 100 --seed "$((300 + r))" >/dev/null
          lab local-flags --maildir "$dir/Mail" --layout mbsync --n 100 --seed "$((400 + r))" \
            --out "$dir/expect.json" >/dev/null
          adj=$("$PY" "$REPO/bench/expect.py" merge --port "$IMAP_PORT" --user "$IMAP_USER" \
            --password "$IMAP_PASS" --before "$dir/before.json" --expect "$dir/expect.json")
          log "expectation merged with the server's own flag changes: $adj"
          sleep "$SETTLE"
          measure "$tool" "$dir" changes "$r" --expect "$dir/expect.json"
        done
        ;;
    esac
  done
  return 0
}

version_of() {
  case "$1" in
    mailtide) "$MAILTIDE" --version 2>/dev/null | head -1 || echo unknown ;;
    mbsync) mbsync --version 2>&1 | head -1 ;;
  esac
}

log "results -> $OUT"
{
  printf '{"kind":"meta","date":"%s","host_nproc":%s,"n":%s,"folders":%s,"steps":%s,"reps":%s,"settle":%s,' \
    "$(date -Is)" "$(nproc)" "$N" "$FOLDERS" "$(json_str "$STEPS")" "$REPS" "$SETTLE"
  printf '"commit":%s,"dovecot":%s' "$(json_str "$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)")" \
    "$(json_str "$(dovecot --version 2>/dev/null || echo unknown)")"
  for tool in $TOOLS; do printf ',"%s":%s' "$tool" "$(json_str "$(version_of "$tool")")"; done
  echo '}'
} >>"$OUT"

for tool in $TOOLS; do
  bench_tool "$tool" || FAILED=1
  bash "$LAB/dovecot-down.sh" "$SRV" >/dev/null 2>&1 || true
done

"$PY" "$REPO/bench/summary.py" "$OUT" >"$MD" || FAILED=1
cat "$MD"
log "raw: $OUT"
log "table: $MD"
[ $FAILED -eq 0 ] || log "some syncs failed or did not check out: see 'correct' above"
exit $FAILED
