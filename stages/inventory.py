"""The reference lab's inventory (stages/inventory.toml), loaded and validated once per process,
its rooms at the run's size (``--room-size``) and in the run's families (``--families``; see
`harness.model.inventory_file`)."""

from pathlib import Path

from harness import Family, Inventory, UsageError, load_inventory
from harness.model.inventory_file import FAMILIES_ENV

PATH = Path(__file__).with_suffix(".toml")
INVENTORY: Inventory = load_inventory(PATH)
if Family.IPV4 not in INVENTORY.families():
    raise UsageError(f"the run keeps {', '.join(INVENTORY.families())} alone ({FAMILIES_ENV}, from "
                     "--families or ini harness_families), but the reference lab needs IPv4 (its internet "
                     "is IPv4, reached through NAT and NAT64): keep ipv4,ipv6 or ipv4")
