"""The one-shot sync benchmark (bench/speed.py): mailtide against mbsync and OfflineIMAP."""
