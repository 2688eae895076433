"""The reference lab's stages, one module each, and the pipeline that orders them."""

from harness.inventory import Kind
from harness.stage import Pipeline
from stages import bootstrap, gw, pas, rhfs, web
from stages.inventory import INVENTORY

PIPELINE = Pipeline(
    [bootstrap.STAGE, gw.STAGE, rhfs.STAGE, web.STAGE, pas.STAGE],
    interfaces={name: INVENTORY.interfaces(name) for name in INVENTORY.hosts},
    # The internet forwards too: to the network behind its narrow link (generate.far_network).
    sysctls={name: INVENTORY.forwarding() if host.kind is Kind.UPLINK else INVENTORY.sysctls(name)
             for name, host in INVENTORY.hosts.items()},
    rooms={name: room.machines for name, room in INVENTORY.rooms.items()},
)
