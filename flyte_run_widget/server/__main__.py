"""``python -m flyte_run_widget.server --help``: the service in the foreground (see command.py)."""

import sys

from .command import main

sys.exit(main())
