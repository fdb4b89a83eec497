"""Run the command line: ``python -m dip`` (see ``dip.cli.commands``)."""

import sys

from dip.cli import main

sys.exit(main())
