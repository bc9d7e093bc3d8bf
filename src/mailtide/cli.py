"""The ``mailtide`` command line.

Exit codes: 0 success; 1 a sync or a store failed; 2 a usage or configuration
mistake; 3 the sync completed but some mail stays on one side (a folder or a
message the other side cannot hold); 70 an internal error (a bug: run with -v
for the traceback).  A user mistake is reported in one line per problem, never
with a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

import mailtide
from mailtide import loading
from mailtide.cli_help import Parser
from mailtide.config import Config, ConfigError, ImapRepository, load_config
from mailtide.daemon import memory
from mailtide.stores.base import StoreError
from mailtide.ui.log import redact, register_secret, setup_logging

if TYPE_CHECKING:
    from mailtide.engine.account import AccountReport

log = structlog.get_logger("mailtide.cli")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STRANDED = 3
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistake on the command line (the message is for the user)."""


def _split_list(values: Sequence[str] | None) -> list[str] | None:
    r"""``-a a,b -a c`` -> ["a", "b", "c"].  "\," keeps a comma in a folder name
    (canonical names never hold a backslash, so the escape is unambiguous)."""
    if not values:
        return None
    items = [
        part.strip().replace("\\,", ",")
        for value in values
        for part in re.split(r"(?<!\\),", value)
        if part.strip()
    ]
    return items or None


def _accounts_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-a",
        "--account",
        metavar="ACCOUNT,...",
        action="append",
        help="only these accounts (default: general.accounts, else all)",
    )


def _add_check_config(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    check = commands.add_parser(
        "check-config",
        parents=parents,
        help=summary,
        description="Check the config file; print every problem, or a summary of the accounts.",
    )
    check.set_defaults(run=_check_config)


def _add_sync(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    sync = commands.add_parser(
        "sync",
        parents=parents,
        help=summary,
        description="Sync the accounts once, both ways, and exit.",
    )
    _accounts_option(sync)
    sync.add_argument(
        "-f",
        "--folder",
        metavar="FOLDER,...",
        action="append",
        help=r'only these folders (canonical names, "/"-separated; "\," for a comma in a name)',
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    sync.add_argument(
        "--full",
        action="store_true",
        help="list every message on both sides, even where the server can say what changed "
        "(CONDSTORE/QRESYNC) since the last sync",
    )
    sync.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="let a run delete more than the account's mass_delete_share of a mailbox",
    )
    sync.add_argument(
        "--restore-deleted",
        action="store_true",
        help="copy messages deleted on one side since the last sync back from the other side, "
        "instead of deleting them there (the way back from a mass deletion made by mistake)",
    )
    sync.add_argument(
        "--now",
        action="store_true",
        help="have the running daemon sync at once and wait for its result (what a plain sync "
        "does anyway for the accounts a daemon holds); without a daemon, sync here",
    )
    sync.set_defaults(run=_sync)


def _add_folders(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    folders = commands.add_parser(
        "folders",
        parents=parents,
        help=summary,
        description="List every folder of the accounts on the server and locally (read-only):"
        " the server name, its special use, the local name, whether it is synced and by which"
        " rule, and the messages on each side. Problems of the folder rules (two folders with"
        " one name, a name that does not map back) are printed on stderr, exit status 2.",
    )
    _accounts_option(folders)
    folders.add_argument("--json", action="store_true", help="one JSON document")
    folders.set_defaults(run=_folders)


def _add_status(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    status = commands.add_parser(
        "status",
        parents=parents,
        help=summary,
        description="Ask every running mailtide daemon of this user what its accounts are doing.",
    )
    status.add_argument("--json", action="store_true", help="one JSON document (see README)")
    status.set_defaults(run=_status)


def _add_daemon(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    daemon = commands.add_parser(
        "daemon",
        parents=parents,
        help=summary,
        description="Keep the accounts in sync as they change, until SIGTERM. SIGUSR1: sync "
        "every account now; SIGUSR2: finish the syncs in flight, then exit.",
    )
    _accounts_option(daemon)
    daemon.set_defaults(run=_daemon)


def _add_password(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    password = commands.add_parser(
        "password",
        parents=parents,
        help=summary,
        description="Manage passwords kept by mailtide.",
    )
    password_commands = password.add_subparsers(dest="action", metavar="ACTION", required=True)
    store = password_commands.add_parser(
        "set",
        parents=parents,
        help="prompt for a password (no echo) and store it in the system keyring",
        description="Prompt for the password of the account's IMAP repository (no echo) and "
        'store it in the system keyring: service "mailtide", username USER@HOST, which '
        "keyring = true reads.",
    )
    store.add_argument("account", metavar="ACCOUNT")
    store.set_defaults(run=_password_set)


def _add_oauth2(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    oauth2 = commands.add_parser(
        "oauth2",
        parents=parents,
        help=summary,
        description="Manage OAuth2 tokens kept by mailtide.",
    )
    oauth2_commands = oauth2.add_subparsers(dest="action", metavar="ACTION", required=True)
    authorize = oauth2_commands.add_parser(
        "authorize",
        parents=parents,
        help="authorize mailtide in a browser and store the refresh token",
        description="Print a URL to open in a browser; after you log in and consent, the"
        " provider sends the browser back to mailtide on 127.0.0.1, and the refresh token is"
        " stored where the repository reads it (oauth2_refresh_token_file, chmod 600, or the"
        " system keyring).",
    )
    authorize.add_argument("account", metavar="ACCOUNT")
    authorize.set_defaults(run=_oauth2_authorize)


def _add_import_config(commands: Any, parents: list[argparse.ArgumentParser], summary: str) -> None:
    imported = commands.add_parser(
        "import-config",
        parents=parents[:1],
        help=summary,
        description="Print a mailtide config that does the job of an OfflineIMAP or mbsync"
        " config (default: the file the tool itself reads). What cannot be translated is"
        " listed in comments.",
    )
    imported.add_argument("tool", choices=("offlineimap", "mbsync"))
    imported.add_argument("file", metavar="FILE", nargs="?", help="the config to translate")
    imported.add_argument(
        "-o", "--output", metavar="OUT", help="write to this new file (0600), never overwriting"
    )
    imported.set_defaults(run=_import_config)


_COMMANDS: dict[str, tuple[str, Callable[[Any, list[argparse.ArgumentParser], str], None]]] = {
    "check-config": ("check the config file and summarise it", _add_check_config),
    "sync": ("sync accounts once", _add_sync),
    "folders": (
        "every folder on both sides, its local name and the rule that decides it",
        _add_folders,
    ),
    "status": ("what the running daemons are doing", _add_status),
    "daemon": ("keep accounts in sync until stopped (what the systemd units run)", _add_daemon),
    "password": ("store an account's password in the system keyring", _add_password),
    "oauth2": ("get an account's OAuth2 refresh token", _add_oauth2),
    "import-config": (
        "translate an OfflineIMAP or mbsync config into a mailtide config",
        _add_import_config,
    ),
}


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``only``, the options of that command alone (the others
    are named, for the help and the errors): building every command's options cost a start-up
    several milliseconds of argparse and gettext (issue 12)."""
    verbosity = Parser(add_help=False)
    loudness = verbosity.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more output: -v debug, -vv also the IMAP conversation (no passwords, no bodies)",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings and errors",
    )
    # SUPPRESS: given before the command or after it (mailtide -c F sync, mailtide sync -c F),
    # the subcommand's parser must not overwrite the value with its default.
    config = Parser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="the config file (default: $XDG_CONFIG_HOME/mailtide/config.toml)",
    )

    parser = Parser(
        prog="mailtide",
        description="Two-way IMAP <-> Maildir mail synchroniser.",
        parents=[verbosity, config],
    )
    parser.add_argument("--version", action="version", version=f"mailtide {mailtide.__version__}")
    parser.add_argument(
        "--log-format",
        choices=("auto", "json"),
        default="auto",
        help="log lines on stderr: auto (coloured on a terminal, key=value otherwise, with "
        "journald priorities under systemd) or json (one object per line)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents: list[argparse.ArgumentParser] = [verbosity, config]
    for name, (text, add) in _COMMANDS.items():
        if only in (None, name):
            add(commands, parents, text)
        else:
            commands.add_parser(name, help=text, add_help=False)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (the first word that is not an option or an option's
    value), or None when it names none that is known."""
    words = iter(argv)
    for word in words:
        if word in ("-c", "--config", "--log-format"):
            next(words, None)
        elif not word.startswith("-"):
            return word if word in _COMMANDS else None
    return None


def _import_config(args: argparse.Namespace) -> int:
    from mailtide.config.import_command import run

    return run(args.tool, args.file, args.output)


def _check_config(args: argparse.Namespace) -> int:
    from mailtide.config.summary import summary  # check-config's alone (issue 12: start-up)

    config = load_config(getattr(args, "config", None))
    print(f"{config.path}: ok")
    # Its report is the place for them, so they are printed here rather than logged.
    for warning in config.warnings:
        print(f"warning: {warning}")
    for line in summary(config):
        print(line)
    return 0


def _chosen_accounts(config: Config, names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    known = config.account_names
    for name in names:
        if name not in known:
            import difflib  # only for the mistake (issue 12: start-up)

            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise UsageError(
                f'no account named "{name}" in {config.path}{hint}; accounts: {", ".join(known)}'
            )
    return list(dict.fromkeys(names))  # each once, in the order given


def _sync(args: argparse.Namespace) -> int:
    from mailtide.quiet import early  # what the command's entry read already (entry.py)

    path = getattr(args, "config", None)
    config = early.config(path) or load_config(path)
    accounts = _chosen_accounts(config, _split_list(args.account))
    folders = _split_list(args.folder)
    _prepare(config)
    names = list(accounts or config.general.accounts)
    handed: list[dict[str, object]] = []
    if not args.dry_run:
        # The accounts a running daemon holds (their lock is its) are synced by it, at once.
        names, handed = _hand_over(names, folders, args)
    if not (args.dry_run or args.full or folders or args.allow_mass_delete or args.restore_deleted):
        names = _unless_quiet(config, names)
    reports: list[AccountReport] = []
    if names:
        memory.one_heap()  # before any worker thread starts (or the quiet check's: entry.py)
        # Imported here so that check-config works whatever state the engine is in.
        import asyncio  # not before: the quiet check needs no event loop (issue 12)

        from mailtide.wiring import sync_accounts

        listed = early.hand_over()  # the sessions begun early: their listings, for the stores
        loading.resume()
        reports = asyncio.run(
            sync_accounts(
                config,
                accounts=names,
                folders=folders,
                dry_run=args.dry_run,
                allow_mass_delete=args.allow_mass_delete,
                restore_deleted=args.restore_deleted,
                mode="full" if args.full else "quick",
                listed=listed,
            )
        )
    return _outcome(reports, handed)


def _unless_quiet(config: Config, names: list[str]) -> list[str]:
    """Those of ``names`` that the quiet check (quiet/) does not find as their last quiet run
    left them; each that it does is reported done, as a sync that did nothing reports it."""
    from mailtide.quiet.check import quiet_mailboxes
    from mailtide.ui.report import account_done

    left = []
    for name in names:
        mailboxes = quiet_mailboxes(config, config.account(name))
        if mailboxes is None:
            left.append(name)
            continue
        log.debug("account.quiet", account=name)
        account_done(name, mailboxes)
    return left


def _hand_over(
    names: list[str], folders: list[str] | None, args: argparse.Namespace
) -> tuple[list[str], list[dict[str, object]]]:
    """Ask the running daemons to sync those of ``names`` they hold and wait for their reports;
    returns the names left to sync here and the daemons' reports."""
    from mailtide.daemon.control import ControlError, ask, peers

    left = list(names)
    reports: list[dict[str, object]] = []
    for peer in peers():
        try:
            held = [a["account"] for a in ask(peer, {"op": "status"}).get("accounts", [])]
        except ControlError as exc:
            log.warning("daemon.unreachable", pid=peer.pid, error=str(exc))
            continue
        mine = [n for n in left if n in held]
        if not mine:
            continue
        log.info("sync.handed_over", pid=peer.pid, accounts=mine)
        answer = ask(
            peer,
            {
                "op": "sync",
                "accounts": mine,
                "folders": folders,
                "full": args.full,
                "allow_mass_delete": args.allow_mass_delete,
                "restore_deleted": args.restore_deleted,
                "wait": True,
            },
            timeout=None,
        )
        if not answer.get("ok"):
            raise StoreError(f"the daemon (pid {peer.pid}) could not sync: {answer.get('error')}")
        reports += answer.get("reports", [])
        left = [n for n in left if n not in mine]
    return left, reports


def _folders(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", None))
    names = _chosen_accounts(config, _split_list(args.account)) or config.general.accounts
    _prepare(config)
    from mailtide.cli_folders import show_folders

    def error(line: str) -> None:
        _error(redact(line))

    return show_folders([config.account(n) for n in names], args.json, error)


def _status(args: argparse.Namespace) -> int:
    import json

    from mailtide.daemon.control import ControlError, ask, peers

    daemons = []
    for peer in peers():
        try:
            daemons.append(ask(peer, {"op": "status"}))
        except ControlError as exc:
            _error(str(exc))
    if args.json:
        print(json.dumps({"daemons": daemons}, indent=2))
        return 0 if daemons else 1
    if not daemons:
        print("no mailtide daemon is running")
        return 1
    for daemon in daemons:
        print(f"daemon pid {daemon.get('pid')}")
        for a in daemon.get("accounts", []):
            print(
                f"  {a['account']}: {a['state']}" + (f" ({a['error']})" if a.get("error") else "")
            )
            if a.get("push"):
                print(f"    push: {', '.join(a['push'])}")
            last = a.get("last_sync")
            if last:
                counts = ", ".join(f"{k} {v}" for k, v in last["counts"].items() if v)
                print(
                    f"    last sync: {last['ended']} ({last['mode']}, {last['result']}"
                    + (f", {counts}" if counts else "")
                    + ")"
                )
                for line in last.get("errors", []):
                    print(f"      {line}")
            if a.get("next_sync"):
                print(f"    next sync: {a['next_sync']}")
            if a.get("retry_at"):
                print(f"    retry at: {a['retry_at']}")
    return 0


def _prepare(config: Config) -> None:
    """Before a command that connects: the secrets to keep out of logs, the config's warnings."""
    for repository in config.repositories:
        if not isinstance(repository, ImapRepository):
            continue
        if repository.password is not None:
            register_secret(repository.password)
        if repository.oauth2 is not None and repository.oauth2.client_secret is not None:
            register_secret(repository.oauth2.client_secret)
    for warning in config.warnings:
        log.warning("config.warning", detail=warning)


def _daemon(args: argparse.Namespace) -> int:
    memory.one_heap()  # before any worker thread starts
    config = load_config(getattr(args, "config", None))
    accounts = _chosen_accounts(config, _split_list(args.account))
    _prepare(config)
    import asyncio

    from mailtide.daemon.supervisor import Supervisor
    from mailtide.wiring import daemon_accounts, daemon_loader, max_sync_accounts

    async def run() -> int:
        supervisor = Supervisor(
            daemon_accounts(config, accounts),
            max_sync_accounts=max_sync_accounts(config),
            loader=daemon_loader(getattr(args, "config", None), accounts),
        )
        return await supervisor.run()

    loading.resume()
    return asyncio.run(run())


def _password_set(args: argparse.Namespace) -> int:
    """Prompt for the password of each IMAP repository of the account (those with ``keyring =
    true``, else all) and store it in the system keyring."""
    import getpass

    from mailtide.auth import system_keyring

    config = load_config(getattr(args, "config", None))
    (name,) = _chosen_accounts(config, [args.account]) or [args.account]
    account = config.account(name)
    imap = [r for r in (account.remote, account.local) if isinstance(r, ImapRepository)]
    if not imap:
        raise UsageError(f'account "{name}" has no IMAP repository, so no password to store')
    for repository in [r for r in imap if r.keyring] or imap:
        item = system_keyring.item_name(repository.user, repository.host)
        try:
            secret = getpass.getpass(f"Password for {item}: ")
            again = getpass.getpass("The same again: ")
        except EOFError:
            raise UsageError("no password given; nothing was stored") from None
        if not secret or secret != again:
            what = "empty" if not secret else "not the same twice"
            raise UsageError(f"the password was {what}; nothing was stored")
        register_secret(secret)
        system_keyring.store_password(repository.user, repository.host, secret)
        print(
            f'stored the password of {item} in the system keyring: service "mailtide",'
            f" username {item}, backend {system_keyring.backend_name()}"
        )
        if not repository.keyring:
            print(f"note: repository {repository.name} reads it once it has keyring = true")
    return 0


def _oauth2_authorize(args: argparse.Namespace) -> int:
    """Run the authorization-code flow for each IMAP repository of the account with the
    built-in OAuth2 flow, and store each refresh token where the repository reads it."""
    import asyncio

    from mailtide.auth.oauth2_authorize import authorize_and_store

    config = load_config(getattr(args, "config", None))
    (name,) = _chosen_accounts(config, [args.account]) or [args.account]
    account = config.account(name)
    repositories = [
        r
        for r in (account.remote, account.local)
        if isinstance(r, ImapRepository) and r.oauth2 is not None and r.oauth2.client_id
    ]
    if not repositories:
        raise UsageError(
            f'account "{name}" has no IMAP repository with oauth2_client_id, so nothing to'
            " authorize"
        )
    for repository in repositories:
        assert repository.oauth2 is not None

        def show(url: str, user: str = repository.user) -> None:
            print(f"Open this URL in a browser and log in as {user}:\n{url}", flush=True)

        where = asyncio.run(
            authorize_and_store(repository.oauth2, repository.user, repository.host, show)
        )
        print(f"stored the refresh token of {repository.user} in {where}")
    return 0


def _outcome(reports: Sequence[AccountReport], handed: Sequence[dict[str, Any]] = ()) -> int:
    """Say on stderr what went wrong, one line each, and pick the exit status: a usage
    mistake, else a failure, else mail left on one side, else 0.  ``handed``: the reports of
    the syncs a daemon ran (``daemon.control``'s JSON form)."""
    failures = [line for r in reports for line in r.failures()]
    failures += [line for h in handed for line in h.get("failures", [])]
    stranded = [line for r in reports for line in r.stranded_lines()]
    stranded += [line for h in handed for line in h.get("stranded", [])]
    for line in failures + stranded:
        _error(redact(line))
    if any(r.usage for r in reports) or any(h.get("usage") for h in handed):
        return EXIT_USAGE
    if failures or any(h.get("result") == "failed" for h in handed):
        return EXIT_FAILED
    if stranded:
        return EXIT_STRANDED
    return 0


def _error(message: str) -> None:
    print(f"mailtide: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    words = sys.argv[1:] if argv is None else argv
    args = _parser(_command_of(words)).parse_args(words)
    verbosity = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0)
    setup_logging(verbosity, json=getattr(args, "log_format", "auto") == "json")
    try:
        if args.run not in (_sync, _daemon):  # they resume once their modules have loaded
            loading.resume()
        code: int = args.run(args)
        return code
    except ConfigError as e:
        for problem in e.problems:
            _error(problem)
        return EXIT_USAGE
    except UsageError as e:
        _error(str(e))
        return EXIT_USAGE
    except StoreError as e:
        _error(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:
        if verbosity > 0:
            print(redact(traceback.format_exc()), end="", file=sys.stderr)
        detail = redact(str(e)).partition("\n")[0]
        _error(f"internal error: {type(e).__name__}" + (f": {detail}" if detail else ""))
        if verbosity <= 0:
            _error("run with -v to see the traceback")
        return EXIT_INTERNAL
