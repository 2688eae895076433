"""Root conftest: kept thin. The harness plugin itself is loaded through its pytest11 entry point."""
