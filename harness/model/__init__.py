"""harness.model: see README.md, "Layout"."""
