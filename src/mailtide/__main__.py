"""``python -m mailtide``: the same as the ``mailtide`` command."""

import sys

from mailtide.cli import main

sys.exit(main())
