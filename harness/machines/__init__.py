"""harness.machines: see README.md, "Layout"."""
