"""``python -m nbjax_bridge``: same as the ``nbjax-bridge`` command."""

import sys

from .cli import main

sys.exit(main())
