"""`python -m harness.cli`: the `harness` command."""

import sys

from harness.cli.command import main

sys.exit(main())
