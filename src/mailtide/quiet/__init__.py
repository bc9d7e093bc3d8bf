"""The quiet check: a one-shot sync of an account that is as a quiet run left it ends before
the engine is loaded (issue 12: most runs from a timer find nothing to do, and mbsync's
no-change run is a fraction of a second).

A **quiet run** is a quick sync of the whole account that carried nothing and found nothing to
say: every mailbox pair either found unchanged by its sides' statuses alone (an IMAP mailbox's
STATUS from LIST-STATUS, a Maildir folder's id and stamp), or synced with nothing to carry and
left with cursors that those statuses prove unchanged next time (``PairReport.quiet``: the run
after changes, whose server side saw its own writes again); no warning, no move, no failure;
and neither store written (``Store.seen``, which also keeps what the store read: the answers
to NAMESPACE and to the folder LIST with each folder's STATUS, byte for byte, and the Maildir's
folders, ids and stamps).  At its end it records a proof (state/quiet.py): those facts, and
the signatures of what else the next run's decisions rest on: the configuration file, the
state database as the run closed it, and mailtide's own code.

The engine decides from its inputs alone: given the same inputs it decides the same.  A quiet
run leaves a state whose cursors are the statuses it read, so a later run whose inputs are byte
for byte those that run read, over the state it left (no run has written it since), finds
every pair unchanged from the statuses alone and does nothing: it may stop at once.  A store
that was written since reads otherwise (a server's UIDNEXT or HIGHESTMODSEQ moves, a folder's
stamp changes), so the check cannot miss a change.  The check (check.py) reads the
inputs again the store's way (the Maildir's stamps and ids, and one IMAP session: login,
NAMESPACE, LIST-STATUS) and compares; anything different, unreadable or out of the ordinary
hands over to the engine, which then decides as it always does.  It never writes: no state,
no mail.  It holds the account's lock while it reads, like a sync.  The IMAP session begins
before the command's other modules load, on a thread of its own (early.py): the server
answers while they load.

What it does not cover, so the engine runs: a run with options (folders, ``--full``, a dry
run), an account with hooks (they run at every sync), Gmail's modes, OAuth2 (the probe speaks
LOGIN and PLAIN with a password from any other source: the config, a file, netrc, a systemd
credential, a command, the keyring), and a side that is neither IMAP nor Maildir.
"""
