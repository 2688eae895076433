"""harness: labs of systemd-nspawn machines, built stage by stage on btrfs snapshots, tested with pytest."""

__version__ = "0.1.0"
