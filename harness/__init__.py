"""harness: build labs of systemd-nspawn machines stage by stage, snapshot them on btrfs, test them with pytest."""

__version__ = "0.1.0"
