"""``python -m mailtide``: the same as the ``mailtide`` command."""

from mailtide.entry import run

run()
