"""Mutants of stage gw (stages/gw.py): plausible regressions of what it builds, one each, one
module per part of gw they break: `dhcp` (Kea, router advertisements, DDNS), `dns` (BIND and the
internet's zone), `firewall` (nftables, NAT, NAT64 and its DNS64), `access` (who may take gw over).

No stage imports this package, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage gw with
``declared(mutants.gw)`` (see harness.model.mutant), which takes the mutants among this
module's names in the order they arrive: each module's in the order it declares them, one
module after the other, as imported below. A new module of gw's mutants is imported here too.
"""

# The order of these imports is the order of gw's mutants: not sorted.
# isort: off
from stages.mutants.gw.dhcp import *  # noqa: F403
from stages.mutants.gw.dns import *  # noqa: F403
from stages.mutants.gw.firewall import *  # noqa: F403
from stages.mutants.gw.access import *  # noqa: F403
# isort: on
