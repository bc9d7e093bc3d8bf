"""``python -m mailtide``: the same as the ``mailtide`` command."""

from mailtide.cli import run

run()
