"""harness.core: see README.md, "Layout"."""
