"""harness.engine.build: see README.md, "Layout"."""
