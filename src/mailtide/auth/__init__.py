"""Credentials: where a repository's password comes from, asked for at every connect."""
