#!/usr/bin/env bash
# Usage: scripts/demo.sh        (normally via `make demo`, which installs deps and the venv first)
#   1. starts a private Dovecot on 127.0.0.1 under demo/server (tests/dovecot.py up),
#   2. fills account "demo" with ~300 deterministic sample messages (scripts/demo_corpus.py),
#   3. writes demo/config.toml (implicit TLS, verified against the server's own cert),
#   4. runs `mailtide sync` into demo/Mail (layout fs), then once more (nothing to do),
#   5. shows the folder tree that arrived and how to read it with mutt,
#   6. stops the server (on every exit, also after a failure or Ctrl-C).
# Each run starts from scratch: demo/ is removed first.
# Env: DEMO_PYTHON (default .venv/bin/python), DEMO_MAILTIDE (default .venv/bin/mailtide).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

PY=${DEMO_PYTHON:-$ROOT/.venv/bin/python}
MAILTIDE=${DEMO_MAILTIDE:-$ROOT/.venv/bin/mailtide}
DEMO=$ROOT/demo
SERVER=$DEMO/server
say() { printf '\n== %s\n' "$*"; }

[ -x "$PY" ] || { echo "demo: $PY not found; run 'make demo' (it creates the venv)" >&2; exit 1; }

# A server left over from an interrupted run would hold the old files open.
if [ -d "$SERVER" ]; then
  "$PY" tests/dovecot.py down "$SERVER" >/dev/null 2>&1 || true
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"

stop_server() {
  local rc=$?
  if [ -d "$SERVER" ]; then
    echo
    echo "== stopping the demo server"
    "$PY" tests/dovecot.py down "$SERVER" || echo "demo: could not stop the server in $SERVER" >&2
  fi
  exit $rc
}
trap stop_server EXIT
trap 'exit 130' INT TERM

say "starting a private Dovecot under demo/server (127.0.0.1 only)"
"$PY" tests/dovecot.py up "$SERVER" demo >"$DEMO/server.env"
# KEY=VALUE lines; read them as data rather than sourcing (paths may hold spaces).
while IFS='=' read -r key value; do
  case "$key" in
    IMAP_PORT | IMAPS_PORT | CERT | IMAP_USER | IMAP_PASS) printf -v "$key" '%s' "$value" ;;
  esac
done <"$DEMO/server.env"
for key in IMAP_PORT IMAPS_PORT CERT IMAP_USER IMAP_PASS; do
  [ -n "${!key:-}" ] || { echo "demo: the server did not report $key" >&2; exit 1; }
done
echo "plain IMAP on 127.0.0.1:$IMAP_PORT, IMAPS on 127.0.0.1:$IMAPS_PORT, user $IMAP_USER"

say "filling the server with sample mail"
"$PY" scripts/demo_corpus.py fill --port "$IMAP_PORT" --user "$IMAP_USER" \
  --password "$IMAP_PASS" >"$DEMO/corpus.json"

toml_str() { # a TOML basic string
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}
cat >"$DEMO/config.toml" <<EOF
# written by scripts/demo.sh for this run only
[general]
state_dir = $(toml_str "$DEMO/state")

[account.demo]
local = "demo-local"
remote = "demo-remote"

[repository.demo-local]
type = "maildir"
path = $(toml_str "$DEMO/Mail")
layout = "fs"

[repository.demo-remote]
type = "imap"
host = "127.0.0.1"
port = $IMAPS_PORT
tls = "implicit"
ca_file = $(toml_str "$CERT")
user = $(toml_str "$IMAP_USER")
password = $(toml_str "$IMAP_PASS")
EOF
chmod 600 "$DEMO/config.toml" # it holds a password: mailtide warns while others can read it
say "wrote demo/config.toml"
sed 's/^password = .*/password = "…"/' "$DEMO/config.toml"

[ -x "$MAILTIDE" ] || { echo "demo: $MAILTIDE not found; run 'make venv'" >&2; exit 1; }
# The sync needs the local root to exist: a missing root is an error, never "all deleted".
mkdir -p "$DEMO/Mail"
say "mailtide check-config -c demo/config.toml"
"$MAILTIDE" check-config -c "$DEMO/config.toml"
say "mailtide sync -c demo/config.toml"
"$MAILTIDE" sync -c "$DEMO/config.toml"

say "mailtide sync again: nothing changed, so nothing is copied"
"$MAILTIDE" sync -c "$DEMO/config.toml"

say "what arrived in demo/Mail"
"$PY" scripts/demo_corpus.py tree "$DEMO/Mail" --expect "$DEMO/corpus.json"

say "read it with mutt"
cat <<EOF
  mutt -f demo/Mail/INBOX

To see every folder in mutt's mailbox list (press 'c' then '?'), put these lines in a muttrc
(for example demo/muttrc, then: mutt -F demo/muttrc):

EOF
"$PY" scripts/demo_corpus.py mailboxes "$DEMO/Mail" | tee "$DEMO/muttrc" | sed 's/^/  /'
cat <<EOF

The server stops now, so further syncs of demo/config.toml have nothing to talk to;
'make demo' starts over from scratch.
EOF
