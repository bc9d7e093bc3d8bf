"""The long-running daemon: decides *when* an account syncs; the engine decides *how*.

Its leaves (``sdnotify``, ``clock``, ``triggers``, ``backoff``) import nothing of mailtide, so
the supervisor can wire them to the engine freely.
"""
