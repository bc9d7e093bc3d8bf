"""A Maildir folder's own id: what UIDVALIDITY is to an IMAP mailbox (mailbox.py).  Its own
module because the quiet check (quiet/) reads it without loading the Maildir mailbox."""

from __future__ import annotations

import contextlib
import os

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir.listing import NotARegularFile, read_regular

FOLDER_ID_FILE = ".mailtide-id"


def folder_id(folder: str, create: bool = True) -> str:
    """The folder's own id, kept in ``<folder>/.mailtide-id``; created atomically when missing
    (unless not ``create``: then "" stands for the id a write would make).

    A new id (the folder was deleted and made again) voids every message id
    the folder gave before, like a new UIDVALIDITY.
    """
    path = os.path.join(folder, FOLDER_ID_FILE)
    existing: str | None = None
    try:
        existing = read_regular(path).decode("ascii", "replace").strip()
        if existing:
            return existing
    except NotARegularFile as err:
        raise MailboxError(
            f"{path} is not a regular file (a symbolic link or a FIFO?): remove it, and "
            "mailtide writes the folder's id anew"
        ) from err
    except FileNotFoundError:
        pass
    except OSError as err:
        raise MailboxError(f"cannot read {path}: {err}") from err
    if not create:
        return ""
    import secrets  # only to make a folder's id (issue 12: it loads hmac and hashlib)

    # ... and these: the quiet check (quiet/) reads ids and never makes one
    from mailtide.private import create_file
    from mailtide.stores.maildir.durability import fsync_dir
    from mailtide.stores.maildir.filenames import temp_path

    token = secrets.token_hex(16)
    tmp = ""
    try:
        tmp = temp_path(folder)
        with create_file(tmp) as f:
            f.write(f"{token}\n".encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:  # an empty (damaged) id file: replace it
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # never replaces an id another process wrote meanwhile
            except FileExistsError:
                return read_regular(path).decode("ascii", "replace").strip() or token
            except OSError:
                os.replace(tmp, path)  # a file system without hard links
        fsync_dir(folder)
    except OSError as err:
        raise MailboxError(f"cannot create {path}: {err}") from err
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return token
