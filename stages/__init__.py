"""The reference lab's stages, one module each, and the pipeline that orders them."""

from harness.inventory import Kind
from harness.stage import Pipeline
from stages import bootstrap, gw, pas, rhfs, web
from stages.generate import uplink_sysctls
from stages.inventory import INVENTORY

PIPELINE = Pipeline(
    [bootstrap.STAGE, gw.STAGE, rhfs.STAGE, web.STAGE, pas.STAGE],
    interfaces={name: INVENTORY.interfaces(name) for name in INVENTORY.hosts},
    sysctls={name: {**INVENTORY.sysctls(name),
                    **(uplink_sysctls(INVENTORY) if host.kind is Kind.UPLINK else {})}
             for name, host in INVENTORY.hosts.items()},
    rooms={name: room.machines for name, room in INVENTORY.rooms.items()},
)
