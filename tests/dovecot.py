"""A private Dovecot 2.3 for tests and the demo, living entirely under one directory.

It listens on 127.0.0.1 only (plain + STARTTLS on one port, implicit TLS on
another), keeps its config, runtime sockets, state, logs, a self-signed
certificate and the Maildir homes under ``root``, and lets *any* user name
log in with the password ``secret``: a fresh user name is a fresh, empty
account, so tests get isolation without restarting the server.  A user may
also be given a password of its own (``account(user, password)``).  The
same passwords serve as OAuth2 tokens (AUTHENTICATE XOAUTH2 / OAUTHBEARER).

Standard library only; it installs nothing.  When running as root the mail is
owned by the system user ``mailtide-test`` (created if missing), so ``root``
and its parents must be traversable by that user.  As an ordinary user the
server runs as that user.

Also a script, for the demo::

    python tests/dovecot.py up DIR     # prints IMAP_HOST=... lines (shell-sourceable)
    python tests/dovecot.py down DIR
"""

from __future__ import annotations

import base64
import contextlib
import grp
import hashlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ports import free_port

PASSWORD = "secret"
MAIL_USER = "mailtide-test"
HOST = "127.0.0.1"
# Also loopback, but not in the certificate: for wrong-host-name tests.
OTHER_HOST = "127.0.0.2"

# What the tests expect from a stock Dovecot 2.3; a capability_override hides some.
CAPABILITIES_WITHOUT_EXTENSIONS = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE"


_KEEP = object()


class DovecotUnavailable(RuntimeError):
    """Dovecot (or openssl) is not installed; the message says what to install."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    host: str
    port: int  # plain IMAP, STARTTLS offered
    imaps_port: int  # implicit TLS
    ca_file: str  # the self-signed certificate, to verify the server with
    password: str = PASSWORD


@dataclass(frozen=True, slots=True)
class ImapAccount:
    """One account on a test Dovecot (the ``imap_account`` fixture yields a fresh one)."""

    host: str
    port: int  # plain IMAP, STARTTLS offered
    imaps_port: int  # implicit TLS
    user: str
    password: str
    ca_file: str  # the server's self-signed certificate


def _require_tools() -> None:
    missing = [
        tool
        for tool in ("dovecot", "doveconf", "openssl")
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None
    ]
    if missing or not Path("/usr/lib/dovecot/imap").exists():
        raise DovecotUnavailable(
            "Dovecot IMAP server not found (missing: "
            + (", ".join(missing) or "/usr/lib/dovecot/imap")
            + "); install it with: apt-get install dovecot-imapd openssl"
        )


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if found is None:
        raise DovecotUnavailable(f"{name} not found; install dovecot-imapd and openssl")
    return found


def _ensure_system_user(name: str, home: str = "/nonexistent") -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    # Another test session may create it at the same moment: check again on failure.
    result = subprocess.run(
        ["useradd", "--system", "--user-group", "-d", home, "-s", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        pwd.getpwnam(name)
    except KeyError:
        reason = result.stderr.strip()
        raise RuntimeError(f"could not create system user {name}: {reason}") from None


def _ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], capture_output=True, check=False)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (nobody may reap it in a container) counts as gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def _traversable_by(path: Path, uid: int, gid: int) -> Path | None:
    """The first ancestor of ``path`` that ``uid`` cannot enter, or None."""
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return p
    return None


class Dovecot:
    """One private Dovecot instance under ``root`` (created if needed).

    ``capability_override`` replaces the advertised CAPABILITY (Dovecot's
    ``imap_capability``), e.g. ``CAPABILITIES_WITHOUT_EXTENSIONS`` to act like
    a server without UIDPLUS, CONDSTORE, QRESYNC or MOVE.

    TLS (see tests/tls_certs.py for certificates to use): ``certificate`` is the server's
    (cert, key) instead of a self-signed one made here, verified with ``ca_file``;
    ``local_certificates`` serves another (cert, key) on each further loopback address
    (Dovecot's ``local IP {}``; the address is listened on too); ``ssl_settings`` are more
    lines of Dovecot config (client certificates, ``ssl_max_protocol``), and
    ``ssl_min_protocol`` replaces TLSv1.2.

    ``settings`` are more lines of Dovecot config for the mail side, e.g. a small
    ``mail_index_log_rotate_max_size`` to make index logs rotate after a few changes.

    ``compress``: offer COMPRESS=DEFLATE after login (the imap_zlib plugin; default on).

    ``oauth2_introspection_url``: OAUTHBEARER and XOAUTH2 logins are checked by Dovecot's
    ``oauth2`` passdb, which posts the token to that URL (RFC 7662 introspection, see
    tests/oauth2_provider.py) and takes ``{"active": true, "username": USER}`` for ``USER``;
    passwords still log in as without it.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        capability_override: str | None = None,
        port: int | None = None,
        imaps_port: int | None = None,
        certificate: tuple[Path, Path] | None = None,
        ca_file: Path | None = None,
        local_certificates: dict[str, tuple[Path, Path]] | None = None,
        ssl_settings: str = "",
        ssl_min_protocol: str = "TLSv1.2",
        oauth2_introspection_url: str | None = None,
        settings: str = "",
        compress: bool = True,
    ) -> None:
        _require_tools()
        self.root = Path(root).resolve()
        self.capability_override = capability_override
        self.host = HOST
        self.local_certificates = local_certificates or {}
        # Ports given are kept; chosen ones are chosen again when another process took them.
        self._given_ports = (port, imaps_port)
        self._choose_ports()
        self.password = PASSWORD
        self.conf = self.root / "dovecot.conf"
        self.own_certificate = certificate is None  # made here, self-signed
        self.cert, self.key = certificate or (
            self.root / "ssl" / "cert.pem",
            self.root / "ssl" / "key.pem",
        )
        self.ca_file = ca_file or self.cert
        self.ssl_settings = ssl_settings
        self.ssl_min_protocol = ssl_min_protocol
        self.oauth2_introspection_url = oauth2_introspection_url
        self.settings = settings
        self.compress = compress
        self.home = self.root / "home"
        self.log = self.root / "log" / "dovecot.log"
        # users with a password of their own, a file each (Dovecot reads a new file at once,
        # a changed one only after a second)
        self.passwd = self.root / "passwd"

    # -- public ---------------------------------------------------------------

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(self.host, self.port, self.imaps_port, str(self.ca_file))

    def account(self, user: str, password: str | None = None) -> ImapAccount:
        """Any user name logs in with the password "secret"; a new name is an empty account.
        ``password`` (any characters but CR, LF and NUL) is accepted for ``user`` too."""
        if password is not None and password != self.password:
            encoded = base64.b64encode(password.encode()).decode()
            (self.passwd / user).write_text(f"{user}:{{PLAIN.B64}}{encoded}\n")
        return ImapAccount(
            self.host,
            self.port,
            self.imaps_port,
            user,
            password or self.password,
            str(self.ca_file),
        )

    def maildir(self, user: str) -> Path:
        """Where ``user``'s Maildir lives (created by Dovecot on first login)."""
        return self.home / user / "Maildir"

    def start(self) -> None:
        """Start the server and wait for its greeting.  When its ports were chosen here and a
        port was taken in the meantime (another test session), it starts on new ones."""
        if self.running():
            return
        for _ in range(5):
            refused = self._launch()
            if refused is None:
                return
            if "Address already in use" not in refused or None not in self._given_ports:
                break
            self._choose_ports()
        raise RuntimeError(f"dovecot did not start: {refused}")

    def _choose_ports(self) -> None:
        port, imaps_port = self._given_ports
        self.port = port or free_port(self.addresses, avoid=(imaps_port or 0,))
        self.imaps_port = imaps_port or free_port(self.addresses, avoid=(self.port,))

    def _launch(self) -> str | None:
        """Start the master on the current ports and wait for it: None once it greets, else
        why it did not start."""
        self._prepare()
        subprocess.run(
            [_tool("doveconf"), "-c", str(self.conf), "-n"],
            check=True,
            capture_output=True,
        )
        # The master forks itself into the background and keeps its stderr: not a pipe, which
        # would never reach its end, but a file (where it says why it did not start, e.g. a
        # port in use).
        errors = self.root / "log" / "start-errors"
        with errors.open("wb") as stderr:
            started = subprocess.run(
                [_tool("dovecot"), "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                check=False,
            )
        if started.returncode != 0:
            why = errors.read_text(errors="replace").strip()
            return why or f"exit status {started.returncode}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._master_pid() is not None and self._greets(self.port):
                (self.root / "pid").write_text(f"{self._master_pid()}\n")
                return None
            time.sleep(0.05)
        return f"no greeting within 15 s; see {self.log}:\n{self._log_tail()}"

    def stop(self) -> None:
        pid = self._master_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "pid").unlink()
        self._end_leftovers()

    def _end_leftovers(self) -> None:
        """Processes of this instance that outlive the master (an imap process serving a
        client lingers until it notices): SIGTERM them (an imap process says BYE and closes),
        so a stop really drops every connection, as a server restart does."""
        mark = f"{self.instance}/".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            if mark in title:
                pids.append(int(entry.name))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.02)
        for pid in pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    @property
    def addresses(self) -> list[str]:
        """The loopback addresses it listens on (each on both ports)."""
        return [self.host, OTHER_HOST, *self.local_certificates]

    @property
    def instance(self) -> str:
        """Dovecot's instance_name, unique per root: its processes' titles start with it."""
        return "mailtide-test-" + hashlib.sha1(str(self.root).encode()).hexdigest()[:8]

    def restart(self, *, capability_override: str | object | None = _KEEP) -> None:
        """Stop and start again on the same ports (optionally with other capabilities)."""
        if capability_override is not _KEEP:
            assert capability_override is None or isinstance(capability_override, str)
            self.capability_override = capability_override
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._master_pid() is not None

    def env(self, user: str = "demo") -> dict[str, str]:
        return {
            "IMAP_HOST": self.host,
            "IMAP_PORT": str(self.port),
            "IMAPS_PORT": str(self.imaps_port),
            "CERT": str(self.cert),
            "IMAP_USER": user,
            "IMAP_PASS": self.password,
            "MAILDIR": str(self.maildir(user)),
            "DOVECOT_CONF": str(self.conf),
        }

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------

    def _master_pid(self) -> int | None:
        """The master's pid, only if that process really is ours (never trust a stale file)."""
        for pid_file in (self.root / "run" / "master.pid", self.root / "pid"):
            try:
                pid = int(pid_file.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (FileNotFoundError, ValueError, ProcessLookupError):
                continue
            if str(self.conf).encode() in cmdline and _alive(pid):
                return pid
        return None

    def _greets(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1) as s:
                return s.recv(200).startswith(b"* OK")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except FileNotFoundError:
            return "(no log)"

    def _mail_ids(self) -> tuple[str, int, int, str, str]:
        """(mail user, uid, gid, internal user, login user) for this process's privileges."""
        if os.geteuid() == 0:
            for group in ("dovecot", "dovenull"):
                _ensure_group(group)
            for user in ("dovecot", "dovenull"):
                try:
                    pwd.getpwnam(user)
                except KeyError:
                    subprocess.run(
                        [
                            "useradd",
                            "--system",
                            "-g",
                            user,
                            "-d",
                            "/nonexistent",
                            "-s",
                            "/usr/sbin/nologin",
                            user,
                        ],
                        capture_output=True,
                        check=False,
                    )
            _ensure_system_user(MAIL_USER)
            entry = pwd.getpwnam(MAIL_USER)
            return MAIL_USER, entry.pw_uid, entry.pw_gid, "dovecot", "dovenull"
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_name

    def _prepare(self) -> None:
        mail_user, uid, gid, internal_user, login_user = self._mail_ids()
        for sub in ("run", "state", "log", "ssl", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.home, 0o755)
        self.passwd.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.home, uid, gid)
        blocked = _traversable_by(self.home, uid, gid)
        if blocked is not None:
            raise RuntimeError(
                f"the mail user {mail_user} cannot enter {blocked}; "
                "use a directory under /tmp or chmod o+x it"
            )
        if self.own_certificate and not (self.cert.exists() and self.key.exists()):
            # DNS:127.0.0.1 too: some clients match only DNS names.
            subprocess.run(
                [
                    _tool("openssl"),
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1",
                    "-keyout",
                    str(self.key),
                    "-out",
                    str(self.cert),
                ],
                check=True,
                capture_output=True,
            )
            os.chmod(self.key, 0o600)
            os.chmod(self.cert, 0o644)
        self.conf.write_text(self._config(mail_user, uid, gid, internal_user, login_user))
        if self.oauth2_introspection_url is not None:
            (self.root / "oauth2.conf").write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )

    def _oauth2_passdb(self) -> str:
        return "" if self.oauth2_introspection_url is None else _oauth2_passdb_text(self.root)

    def _config(self, mail_user: str, uid: int, gid: int, internal: str, login: str) -> str:
        dh = "/usr/share/dovecot/dh.pem"
        dh_line = f"ssl_dh = <{dh}" if Path(dh).exists() else ""
        caps = (
            f"  imap_capability = {self.capability_override}\n"
            if self.capability_override is not None
            else ""
        )
        # COMPRESS=DEFLATE (RFC 4978) after login: imap_zlib, which needs zlib loaded.
        zlib = "mail_plugins = $mail_plugins zlib\n" if self.compress else ""
        imap_zlib = "  mail_plugins = $mail_plugins imap_zlib\n" if self.compress else ""
        instance = self.instance
        addresses = ", ".join(self.addresses)
        locals_ = "".join(
            f"local {address} {{\n  ssl_cert = <{cert}\n  ssl_key = <{key}\n}}\n"
            for address, (cert, key) in self.local_certificates.items()
        )
        unprivileged = os.geteuid() != 0
        # As an ordinary user nothing can chroot; as root keep Dovecot's defaults.
        no_chroot = "  chroot =\n" if unprivileged else ""
        return f"""\
# private test instance (tests/dovecot.py), loopback only
instance_name = {instance}
base_dir = {self.root}/run
state_dir = {self.root}/state
protocols = imap
listen = {addresses}
log_path = {self.log}
info_log_path = {self.root}/log/dovecot-info.log
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}

ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
{dh_line}
ssl_min_protocol = {self.ssl_min_protocol}
{self.ssl_settings}
{locals_}disable_plaintext_auth = no
# xoauth2 and oauthbearer check a token as a password against the passdbs below: "secret" (or
# a user's own password) is a valid token, anything else a refused one, with its error report.
auth_mechanisms = plain login xoauth2 oauthbearer
auth_verbose = no
# Wrong-password tests should not wait the default 2 s.
auth_failure_delay = 0

{self._oauth2_passdb()}# Any user name, password "secret": a new name is a new, empty account.
passdb {{
  driver = static
  args = password={self.password}
}}
# Or a password of the user's own (a mismatch above goes on to this one).
passdb {{
  driver = passwd-file
  args = {self.passwd}/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.home}/%u
}}

mail_location = maildir:~/Maildir
mail_fsync = optimized
{zlib}{self.settings}
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Archive {{
    special_use = \\Archive
  }}
  # A special-use folder named as some servers do (Exchange in German), for map_special.
  mailbox "Gesendete Objekte" {{
    special_use = \\Sent
  }}
}}

protocol imap {{
  mail_max_userip_connections = 200
{imap_zlib}{caps}}}

service imap-login {{
{no_chroot}  inet_listener imap {{
    address = {addresses}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {addresses}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
# No growing delay for an address after failed logins (anvil's auth penalty, up to 15 s): the
# tests refuse many different credentials from 127.0.0.1, and each must be answered at once.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
{no_chroot}  unix_listener auth-userdb {{
    mode = 0600
    user = {mail_user}
  }}
}}
"""


def _oauth2_passdb_text(root: Path) -> str:
    # Tokens go to the oauth2 passdb only; passwords skip it (mechanisms = ...).
    return f"""\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf
}}
"""


def _read_env(root: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in (root / "env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    return env


def private_dovecot(**options: object) -> Iterator[Dovecot]:
    """A private Dovecot on free ports on 127.0.0.1, removed afterwards (or the test skipped
    with the reason when Dovecot is not installed).  ``options`` go to ``Dovecot``."""
    # Under /tmp, not pytest's tmp_path: the mail user must be able to traverse the path.
    root = tempfile.mkdtemp(prefix="mailtide-dovecot-", dir="/tmp")
    os.chmod(root, 0o755)
    try:
        server = Dovecot(root, **options)  # type: ignore[arg-type]
    except DovecotUnavailable as e:
        import pytest  # only tests call this; the module stays stdlib-only as a script

        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("MAILTIDE_REQUIRE_SERVERS"):  # make test: a skip would hide it
            pytest.fail(f"{e} (MAILTIDE_REQUIRE_SERVERS is set)")
        pytest.skip(str(e))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("up", "down"):
        print("usage: dovecot.py up DIR [USER] | down DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    root.mkdir(parents=True, exist_ok=True)
    old = _read_env(root.resolve())
    try:
        server = Dovecot(
            root,
            port=int(old["IMAP_PORT"]) if "IMAP_PORT" in old else None,
            imaps_port=int(old["IMAPS_PORT"]) if "IMAPS_PORT" in old else None,
        )
    except DovecotUnavailable as e:
        print(f"dovecot.py: {e}", file=sys.stderr)
        return 1
    if argv[0] == "down":
        server.stop()
        return 0
    user = argv[2] if len(argv) > 2 else "demo"
    server.start()
    env = server.env(user)
    (server.root / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    for key, value in env.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
