"""The quiet check: a one-shot sync of an account that is as a quiet run left it ends before
the engine is loaded (issue 12: most runs from a timer find nothing to do, and mbsync's
no-change run is a fraction of a second).

A **quiet run** is a quick sync of the whole account that did nothing and found nothing to
say: every mailbox pair was found unchanged by its sides' statuses alone (an IMAP mailbox's
STATUS from LIST-STATUS, a Maildir folder's id and stamp; ``PairReport.quiet``), no warning,
no row of the state written, and each store read nothing beyond those statuses, the folder
list and the namespace (``Store.seen``).  At its end it records a proof (state/quiet.py): those
facts, and the signatures of what else its decisions rest on: the configuration file, the
state database as it was closed, and mailtide's own code.

The engine decides from its inputs alone: given the same inputs it decides the same.  So a
later run whose inputs are byte for byte those of a quiet run, over a state that no run has
written since, would be quiet too, and may stop at once.  The check (check.py) reads the
inputs again the store's way (the Maildir's stamps and ids, and one IMAP session: login,
NAMESPACE, LIST-STATUS) and compares; anything different, unreadable or out of the ordinary
hands over to the engine, which then decides as it always does.  It never writes: no state,
no mail.  It holds the account's lock while it reads, like a sync.

What it does not cover, so the engine runs: a run with options (folders, ``--full``, a dry
run), an account with hooks (they run at every sync), Gmail's modes, a password from the
keyring or OAuth2 (the probe speaks LOGIN and PLAIN with a password from the config, a file,
netrc, a systemd credential or a command), and a side that is neither IMAP nor Maildir.
"""
