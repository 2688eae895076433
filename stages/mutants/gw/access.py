"""Mutants of gw's own access: a debugging SSH setting left behind, and the DDNS key made
readable by any user of gw.

Their own module because they break no service a client uses but who may take gw over; they
are gw's last mutants (stages/mutants/gw/__init__.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import mutant
from harness.model.mutant import run
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness import Lab


@mutant("an admin allowed root SSH logins with an empty password on gw, to debug, and left it so")
def gw_root_ssh_empty_password(lab: Lab) -> None:
    gw = lab["gw"]
    run(gw, "printf 'PermitRootLogin yes\\nPermitEmptyPasswords yes\\n' > /etc/ssh/sshd_config.d/debug.conf "
            "&& systemctl restart ssh")
    gw.wait_for_open_port(22, str(INVENTORY["gw"].nic("lan").address))


@mutant("Kea's DDNS configuration is world-readable: any user of gw reads the key that rewrites names")
def gw_ddns_key_readable(lab: Lab) -> None:
    run(lab["gw"], "chmod 644 /etc/kea/kea-dhcp-ddns.conf")


@mutant("BIND's zone configuration is world-readable: any user of gw reads the DDNS key in it")
def gw_named_key_readable(lab: Lab) -> None:
    run(lab["gw"], "chmod 644 /etc/bind/named.conf.local")
