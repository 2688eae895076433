"""The reference lab's inventory (stages/inventory.toml), loaded and validated once per process,
its rooms at the run's size (``--room-size``, see `harness.inventory`)."""

from pathlib import Path

from harness.inventory import Inventory, load

PATH = Path(__file__).with_suffix(".toml")
INVENTORY: Inventory = load(PATH)
