"""The reference lab's specification: what it promises beyond the machine database
(stages/inventory.toml), as plain data.

The generator (stages/generate/) builds the lab's configuration from it, and the scenarios
take their expectations from it; neither reads the other. A mistake in the generator (a
lease time mistyped, a zone misnamed) then shows as a difference between what the lab does
and what this plan says, instead of being copied into the expectation it is checked against.
What only says *how* the lab keeps a promise (TSIG keys, ports, TAYGA's pool, interface
names) stays in the generator.

Stage modules import this module whole (``from stages import spec``, then ``spec.LEASE``):
a stage's key hashes the source of the modules it refers to, and a value imported by name
(an int, a dict) does not refer to its module.
"""

from __future__ import annotations

import ipaddress

from harness import Family

LAN = "lan"  # the segment of the lab's clients, which gw serves
UPLINK = "uplink"  # the segment between gw and the simulated internet

# DHCP, both families: a lease lasts LEASE seconds; clients renew at a quarter of it and
# rebind at half; a DHCPv6 address is preferred for PREFERRED seconds, then deprecated until
# the lease ends.
LEASE = 3600
PREFERRED = LEASE * 3 // 4

# A machine is named in the lab's domain by its reservation, and every DHCP client also in
# <DYNAMIC>.<domain>, by DDNS: as <name>.<DYNAMIC>.<domain> with a reservation, as
# <DYNAMIC>-<address, dashed>.<DYNAMIC>.<domain> without one.
DYNAMIC = "dyn"

# The simulated internet serves a public-looking zone: its own name, ns and www in every
# family it has, and UPLINK_IPV4_ONLY with an A record only, as most names still are.
UPLINK_ZONE = "example.org"
UPLINK_IPV4_ONLY = "ipv4only"

# NAT64 on gw: IPv6-only machines reach IPv4 destinations at this prefix plus the IPv4
# address, which DNS64 hands them. A network-specific prefix inside the documentation range:
# the well-known 64:ff9b::/96 must not reach private IPv4 addresses (RFC 6052), and the lab's
# internet is one.
NAT64_PREFIX = "2001:db8:64:ff9b::/96"

# Beyond the internet, a network behind a narrow link (a tunnel's, a PPPoE line's): FAR in
# each family, NARROW_MTU bytes wide. A packet too big for it gets packet-too-big (IPv6) or
# fragmentation-needed (IPv4) from the internet, as from any router on a path, and gw must
# pass that error back to the client.
NARROW_MTU = 1280  # IPv6's minimum: the narrowest link IPv6 allows
FAR: dict[Family, ipaddress.IPv4Network | ipaddress.IPv6Network] = {
    Family.IPV4: ipaddress.IPv4Network("192.0.2.0/24"),
    Family.IPV6: ipaddress.IPv6Network("2001:db8:fffe::/64")}

# rhfs0's SSH server, which every login's home travels through: it holds LOGINS_AT_ONCE
# connections that have not yet authenticated without refusing one (every seat logging in at
# once, twice over for retries and an administrator, never fewer than sshd's own 10), and
# refuses every connection past twice that many (sshd's MaxStartups start:rate:full).
def logins_at_once(seats: int) -> tuple[int, int]:
    """(held without a refusal, past which every connection is refused) for ``seats`` seats."""
    start = max(10, 2 * seats)
    return start, 2 * start

# apps runs the lab's application, pad, as one rootless podman pod of user APPS_USER: every
# process of it has her uid or one of her subordinate ids on apps, never root's. The LAN
# reaches pad by name (pad.<domain>), through apps's web server on port 80, in both families;
# the pod's own ports on apps (pad's 8388, PostgreSQL's 5432) answer apps alone.
APPS_USER = "apps"
APPS_SITE = "pad"
APPS_PRIVATE_PORTS = {"pad": 8388, "postgresql": 5432}

# apps also runs one container the way seed 002 does: an IPv6 address of its own, from
# APPS_ROUTED6 (a /80 of the LAN's /64, which gw routes to apps), named in DNS while it runs
# (<APPS_CONTAINER>.<APPS_ZONE>.<domain>, a zone of its own that apps updates) and gone from
# it once it stops. It answers on APPS_CONTAINER_PORT over IPv6 alone: it has no IPv4
# address, so it reaches the IPv4 internet as the IPv6-only machines do (DNS64 and NAT64).
APPS_ROUTED6 = "2001:db8:1:0:66::/80"
APPS_CONTAINER = "hello"
APPS_CONTAINER_ADDRESS = "2001:db8:1:0:66::10"
APPS_CONTAINER_PORT = 8000
APPS_ZONE = "ct"
