#!/usr/bin/env bash
# Usage: scripts/deps.sh [EXTRA-PACKAGE...]
#   Makes sure the Debian packages the tests and the demo need are installed:
#   dovecot-imapd, openssl, time; isync (mbsync) and offlineimap3, whose Maildirs the
#   tests adopt; the libraries of the private Courier-IMAP that tests/courier.py unpacks
#   from .debs (courier-imap itself conflicts with dovecot-imapd, so it is not installed);
#   systemd, for `systemd-analyze verify` of contrib/systemd (a container may lack it);
#   neomutt and tmux, for the test that drives neomutt in a terminal as a user would;
#   plus any EXTRA-PACKAGE,
#   plus python3-venv when $PYTHON (default python3) is Debian's and cannot make venvs.
#   Everything present: prints one line and touches nothing (no apt at all).
#   Something missing: as root, `apt-get update` then `apt-get install -y`;
#   otherwise prints the exact command to run and exits 1.
set -euo pipefail

PYTHON=${PYTHON:-python3}
wanted=(dovecot-imapd openssl time isync offlineimap3
  libcourier-unicode4 libidn12 libltdl7 libgamin0 libgdbm6 systemd neomutt tmux e2fsprogs "$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian system; make sure these are installed: ${wanted[*]}" >&2
  exit 0
fi

installed() { # package -> true if dpkg knows it as installed
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for pkg in "${wanted[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

# Debian splits ensurepip out of python3; `python3 -m venv` fails without it.
# Only Debian's own interpreter can be fixed by apt (pyenv & co. bring their own).
py=$(command -v "$PYTHON" 2>/dev/null || true)
if [ -n "$py" ] && ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  case "$(readlink -f "$py")" in
    /usr/bin/*) missing+=(python3-venv) ;;
  esac
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present (${wanted[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: install them as root, then run make again:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
for pkg in "${missing[@]}"; do
  installed "$pkg" || { echo "deps: $pkg is still not installed after apt-get" >&2; exit 1; }
done
echo "deps: installed ${missing[*]}"
