"""The reference lab's stages, one module each, and the pipeline that orders them."""

from harness import Pipeline
from harness.model.inventory import Kind
from harness.model.mutant import declared
from stages import apps, bootstrap, gw, mutants, pas, rhfs, spec, web
from stages.inventory import INVENTORY

PIPELINE = Pipeline(
    [bootstrap.STAGE, gw.STAGE, rhfs.STAGE, web.STAGE, apps.STAGE, pas.STAGE],
    inventory=INVENTORY,  # interfaces, rooms, and the router's forwarding
    # The internet forwards too: to the network behind its narrow link (generate.far_network).
    sysctls={name: INVENTORY.forwarding() for name, host in INVENTORY.hosts.items()
             if host.kind is Kind.UPLINK},
    # Each stage's mutants, from stages/mutants/<stage>.py: no stage imports them, so no key hashes them.
    mutants={"gw": declared(mutants.gw), "rhfs": declared(mutants.rhfs), "web": declared(mutants.web),
             "apps": declared(mutants.apps), "pas": declared(mutants.pas)},
    # A lab left warm (--warm-labs) is adopted only until the first DHCP renewal (a quarter of
    # the shortest lease): past it, its machines hold leases a fresh boot would not.
    warm_for=spec.LEASE / 4,
)
