"""Credentials: where a repository's password comes from."""
