"""The reference lab's inventory (stages/inventory.toml), loaded and validated once."""

from pathlib import Path

from harness.inventory import Inventory, load

PATH = Path(__file__).with_suffix(".toml")
TEXT = PATH.read_text()
INVENTORY: Inventory = load(PATH)
