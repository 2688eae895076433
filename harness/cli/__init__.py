"""The `harness` command: `command` parses and dispatches, `args` resolves what its verbs
share, `labs` and `snapshots` hold the verbs."""

from harness.cli.command import main, parser

__all__ = ["main", "parser"]
