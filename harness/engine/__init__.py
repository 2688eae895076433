"""harness.engine: see README.md, "Layout"."""
