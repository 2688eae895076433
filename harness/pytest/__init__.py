"""harness.pytest: see README.md, "Layout"."""
