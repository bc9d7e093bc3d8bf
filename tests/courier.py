"""A private Courier-IMAP 5.0 for tests: a server with another dialect than Dovecot.

Courier names folders ``INBOX.<name>`` with "." as separator, keeps its own
keyword files, and (with ``IMAP_CAPABILITY`` as set here) has no UIDPLUS: no
APPENDUID after APPEND and no UID EXPUNGE, the case the engine must handle
without duplicates or other clients' messages expunged.

Why it is not simply installed: Debian's courier-imap conflicts with
dovecot-imapd, and courier-authlib has compiled-in paths (/etc/courier,
/run/courier/authdaemon, /usr/lib/courier-authlib).  So the .debs are fetched
with ``apt-get download`` into a cache (``<repo>/.cache/courier``, ignored by
git), unpacked, and the servers run inside a private mount namespace
(``unshare -m``) where /usr is an overlay of the unpacked tree over the real
/usr, /etc an overlay that adds an empty /etc/courier with our own config
directory bound onto it, and /run a private tmpfs.  Nothing outside ``root``
changes except the system user that owns the mail (shared with tests/dovecot.py).
The plain libraries the binaries link (libcourier-unicode4 libidn12 libltdl7
libgamin0 libgdbm6) come from scripts/deps.sh.

Needs root (mount namespaces).  ``private_courier`` skips the test with the
reason when something is missing.  Every user logs in with the password
"secret"; ``account(name)`` creates a new, empty account.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dovecot import HOST, MAIL_USER, PASSWORD, ImapAccount, _alive, _ensure_system_user
from ports import free_port

PACKAGES = (
    "courier-imap",
    "courier-base",
    "courier-authlib",
    "courier-authdaemon",
    "courier-authlib-userdb",
)
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "courier"
# Courier 5.0's default capabilities without UIDPLUS (and without the CRAM logins, which
# would need the clear password in the userdb).
CAPABILITY = "IMAP4rev1 CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"

_unpack_lock = threading.Lock()


class CourierUnavailable(RuntimeError):
    """Something Courier needs is missing here; the message says what."""


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload, no-any-return]


def unpacked_debs(cache: Path = CACHE) -> Path:
    """The Courier packages unpacked (a tree with usr/ and etc/), fetched once and kept in
    ``cache``; concurrent sessions build their own copy and the first rename wins."""
    tree = cache / "root"
    if (tree / "usr" / "bin" / "imapd").exists():
        return tree
    with _unpack_lock:
        if (tree / "usr" / "bin" / "imapd").exists():
            return tree
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise CourierUnavailable(f"{tool} not found: Courier is fetched as Debian packages")
        cache.mkdir(parents=True, exist_ok=True)
        # the cache lives in the repository: keep it out of git without touching .gitignore
        (cache.parent / ".gitignore").write_text("*\n")
        work = Path(tempfile.mkdtemp(prefix="unpack-", dir=cache))
        try:
            debs = work / "debs"
            debs.mkdir()
            got = _run(["apt-get", "download", *PACKAGES], cwd=debs)
            if got.returncode != 0 and os.geteuid() == 0:  # no package lists yet
                _run(["apt-get", "update", "-qq"])
                got = _run(["apt-get", "download", *PACKAGES], cwd=debs)
            if got.returncode != 0:
                raise CourierUnavailable(
                    "could not fetch the Courier packages with apt-get download: "
                    + got.stderr.strip()[-300:]
                )
            for deb in sorted(debs.glob("*.deb")):
                result = _run(["dpkg-deb", "-x", str(deb), str(work / "root")])
                if result.returncode != 0:
                    raise CourierUnavailable(f"dpkg-deb -x {deb.name}: {result.stderr.strip()}")
            with contextlib.suppress(OSError):  # another session was faster: use theirs
                os.rename(work / "root", tree)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tree


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


class Courier:
    """One private Courier-IMAP under ``root``: plain IMAP on ``port`` (127.0.0.1 only)."""

    def __init__(self, root: Path, tree: Path) -> None:
        self.root = root.resolve()
        self.tree = tree
        self.host = HOST
        self.port = free_port((HOST,))
        self.password = PASSWORD
        self.etc = self.root / "etc"  # bound onto /etc/courier in the namespace
        self.home = self.root / "home"
        self.pid_dir = self.root / "run"
        self._users: set[str] = set()
        self._lock = threading.Lock()
        self._pids: list[int] = []
        self._namespace: str | None = None
        self._hash = ""  # the password, crypt(3)-style, for userdb

    # -- public ---------------------------------------------------------------

    def account(self, user: str) -> ImapAccount:
        """A new user (or the one of that name made before) with the password "secret"."""
        with self._lock:
            if user not in self._users:
                self._add_user(user)
                self._users.add(user)
        return ImapAccount(self.host, self.port, 0, user, self.password, "")

    def maildir(self, user: str) -> Path:
        return self.home / user / "Maildir"

    def start(self) -> None:
        self._prepare()
        stub = self.root / "etc-stub"
        (stub / "courier").mkdir(parents=True, exist_ok=True)
        env = self.root / "imapd.env"
        env.write_text(
            "set -a\n. /etc/courier/imapd\n"
            f'IMAP_CAPABILITY="{CAPABILITY}"\n'
            "IMAP_EMPTYTRASH=\nMAXDAEMONS=60\nMAXPERIP=60\nMAILDIRPATH=Maildir\n"
            # Without FAM, Courier's IDLE looks at the folder this often (default 60 s).
            "IMAP_IDLE_TIMEOUT=2\n"
        )
        usr = self.tree / "usr"
        script = f"""set -e
mount -t overlay overlay -o lowerdir={usr}:/usr /usr
mount -t overlay overlay -o lowerdir={stub}:/etc /etc
mount --bind {self.etc} /etc/courier
mount -t tmpfs tmpfs /run
mkdir -p /run/courier/authdaemon
/usr/sbin/makeuserdb
/usr/sbin/courierlogger -pid={self.pid_dir}/authdaemond.pid -start \
  /usr/lib/courier/courier-authlib/authdaemond
i=0
while [ ! -S /run/courier/authdaemon/socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
exec /usr/bin/env -i PATH=/usr/bin:/bin /bin/sh -c '. {env}; \
  exec /usr/sbin/courierlogger -pid={self.pid_dir}/imapd.pid -start \
  /usr/sbin/couriertcpd -address={self.host} -maxprocs=60 -maxperip=60 \
  -nodnslookup -noidentlookup {self.port} \
  /usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir'
"""
        result = _run(["unshare", "-m", "--propagation", "private", "sh", "-c", script])
        if result.returncode != 0:
            why = result.stderr.strip()
            if "ermission denied" in why or "not permitted" in why:  # a container without mounts
                raise CourierUnavailable(f"no private mount namespace here: {why}")
            raise RuntimeError(f"courier did not start: {why}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self._pids = self._read_pids()
            if len(self._pids) == 2 and self._greets():
                self._namespace = _mount_namespace(self._pids[0])
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("courier did not start: no greeting on its port")

    def stop(self) -> None:
        """Stop the two supervisors (they stop their children), then whatever else still runs
        in our mount namespace (an imapd serving a connection): by namespace, never by name."""
        for pid in self._pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in self._pids):
            time.sleep(0.05)
        for pid in self._pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._namespace is not None and self._namespace != _mount_namespace(os.getpid()):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and _mount_namespace(int(entry.name)) == self._namespace:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(entry.name), signal.SIGKILL)
        self._pids = []

    # -- internals ------------------------------------------------------------

    def _read_pids(self) -> list[int]:
        pids = []
        for name in ("authdaemond.pid", "imapd.pid"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                pids.append(int((self.pid_dir / name).read_text().split()[0]))
        return pids

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return s.recv(200).startswith(b"* OK")
        except OSError:
            return False

    def _prepare(self) -> None:
        if os.geteuid() != 0:
            raise CourierUnavailable("the private Courier needs root (a mount namespace)")
        if shutil.which("unshare") is None or shutil.which("nsenter") is None:
            raise CourierUnavailable("unshare/nsenter not found (util-linux)")
        missing = self._missing_libraries()
        if missing:
            raise CourierUnavailable(
                "Courier's libraries are missing (" + ", ".join(missing) + "); run scripts/deps.sh"
            )
        _ensure_system_user(MAIL_USER)
        for d in (self.etc, self.home, self.pid_dir):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.root, self.home):
            os.chmod(d, 0o755)
        for src in (self.tree / "etc" / "courier").iterdir():
            if src.is_file():
                shutil.copy(src, self.etc / src.name)
        (self.etc / "authdaemonrc").write_text(
            'authmodulelist="authuserdb"\ndaemons=3\nauthdaemonvar=/run/courier/authdaemon\n'
            'DEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n'
        )
        self._hash = _run(["openssl", "passwd", "-1", self.password]).stdout.strip()
        userdb = self.etc / "userdb"
        userdb.write_text("")
        os.chmod(userdb, 0o600)

    def _missing_libraries(self) -> list[str]:
        lib = self.tree / "usr" / "lib"
        missing: set[str] = set()
        for binary in (
            "usr/bin/imapd",
            "usr/lib/courier/courier/imaplogin",
            "usr/lib/courier/courier-authlib/authdaemond",
            "usr/sbin/couriertcpd",
        ):
            out = _run(["ldd", str(self.tree / binary)], env={"LD_LIBRARY_PATH": str(lib)})
            missing.update(
                line.split()[0] for line in out.stdout.splitlines() if "not found" in line
            )
        return sorted(missing)

    def _add_user(self, user: str) -> None:
        entry = pwd.getpwnam(MAIL_USER)
        maildir = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        for dirpath, _, files in os.walk(self.home / user):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), entry.pw_uid, entry.pw_gid)
        with (self.etc / "userdb").open("a") as f:
            f.write(
                f"{user}\tuid={entry.pw_uid}|gid={entry.pw_gid}|home={self.home / user}"
                f"|mail={maildir}|systempw={self._hash}\n"
            )
        # authuserdb reads userdb.dat, rebuilt by the packaged tool inside our namespace
        result = _run(
            [
                "nsenter",
                f"--mount=/proc/{self._pids[0]}/ns/mnt",
                "/usr/sbin/makeuserdb",
            ]
        )
        if result.returncode != 0:
            raise RuntimeError(f"makeuserdb failed: {result.stderr.strip()}")


def private_courier() -> Iterator[Courier]:
    """A private Courier on a free port on 127.0.0.1, removed afterwards (or the test skipped
    with the reason when it cannot run here)."""
    import pytest

    # Under /tmp: the mail user must be able to traverse the path.
    root = Path(tempfile.mkdtemp(prefix="mailtide-courier-", dir="/tmp"))
    try:
        server = Courier(root, unpacked_debs())
        server.start()
    except CourierUnavailable as e:
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("MAILTIDE_REQUIRE_SERVERS"):  # make test: a skip would hide it
            pytest.fail(f"{e} (MAILTIDE_REQUIRE_SERVERS is set)")
        pytest.skip(str(e))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
