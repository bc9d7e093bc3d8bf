"""The ``mailtide`` command line.

Exit codes: 0 success; 1 a sync or a store failed; 2 a usage or configuration
mistake; 70 an internal error (a bug: run with -v for the traceback).  A user
mistake is reported in one line per problem, never with a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import re
import sys
import traceback
from collections.abc import Sequence

import mailtide
from mailtide.config import Config, ConfigError, ImapRepository, MaildirRepository, load_config
from mailtide.config.model import Repository
from mailtide.stores.base import StoreError
from mailtide.ui.log import redact, register_secret, setup_logging

EXIT_FAILED = 1
EXIT_USAGE = 2
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


def _parser() -> argparse.ArgumentParser:
    verbosity = argparse.ArgumentParser(add_help=False)
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
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="the config file (default: $XDG_CONFIG_HOME/mailtide/config.toml)",
    )

    parser = argparse.ArgumentParser(
        prog="mailtide",
        description="Two-way IMAP <-> Maildir mail synchroniser.",
        parents=[verbosity],
    )
    parser.add_argument("--version", action="version", version=f"mailtide {mailtide.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check-config",
        parents=[verbosity, config],
        help="check the config file and summarise it",
        description="Check the config file; print every problem, or a summary of the accounts.",
    )
    check.set_defaults(run=_check_config)

    sync = commands.add_parser(
        "sync",
        parents=[verbosity, config],
        help="sync accounts once",
        description="Sync the accounts once, both ways, and exit.",
    )
    sync.add_argument(
        "-a",
        "--account",
        metavar="ACCOUNT,...",
        action="append",
        help="only these accounts (default: general.accounts, else all)",
    )
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
    sync.set_defaults(run=_sync)
    return parser


def _describe(repository: Repository) -> str:
    if isinstance(repository, MaildirRepository):
        return f"{repository.name} (maildir, {repository.layout}, {repository.path})"
    assert isinstance(repository, ImapRepository)
    return (
        f"{repository.name} (imap, {repository.host}:{repository.port}, tls {repository.tls},"
        f" user {repository.user})"
    )


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{config.path}: ok")
    print(f"state: {config.general.state_dir}")
    for account in config.accounts:
        synced = "" if account.name in config.general.accounts else " (only with -a)"
        print(f"account {account.name}{synced}")
        print(f"  local:  {_describe(account.local)}")
        print(f"  remote: {_describe(account.remote)}")
    return 0


def _chosen_accounts(config: Config, names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    known = config.account_names
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise UsageError(
                f'no account named "{name}" in {config.path}{hint}; accounts: {", ".join(known)}'
            )
    return list(dict.fromkeys(names))  # each once, in the order given


def _sync(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    accounts = _chosen_accounts(config, _split_list(args.account))
    folders = _split_list(args.folder)
    for repository in config.repositories:
        if isinstance(repository, ImapRepository) and repository.password is not None:
            register_secret(repository.password)
    # Imported here so that check-config works whatever state the engine is in.
    from mailtide.engine.run import sync_accounts

    reports = asyncio.run(
        sync_accounts(
            config,
            accounts=accounts,
            folders=folders,
            dry_run=args.dry_run,
            allow_mass_delete=args.allow_mass_delete,
            mode="full" if args.full else "quick",
        )
    )
    failures = [line for report in reports for line in report.failures()]
    for line in failures:
        _error(redact(line))
    return EXIT_FAILED if failures else 0


def _error(message: str) -> None:
    print(f"mailtide: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    verbosity = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0)
    setup_logging(verbosity)
    try:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
