"""The pieces of ``bench/daemon.py``: the daemon's push latency, idle cost, stop and recovery
times, measured from outside against a private lab Dovecot, with OfflineIMAP beside it."""
