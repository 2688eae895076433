"""What a lab's links are made of, as plain values: an address family and one machine's
interface on one segment. A leaf module, so that the inventory, stages, settings and the
network that wires them can all name them without importing one another."""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.errors import UsageError

IFNAMSIZ = 15  # longest interface name the kernel accepts
_IFNAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]*")
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


class Family(enum.StrEnum):
    """An address family: what a scenario's id names (``ipv4``, ``ipv6``)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @property
    def version(self) -> int:
        """4 or 6, as `ipaddress` and `ip -4/-6` say it."""
        return 4 if self is Family.IPV4 else 6

    @classmethod
    def of(cls, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Family:
        """The family of ``address`` (text or an address object)."""
        return cls.IPV4 if ipaddress.ip_address(str(address).split("/")[0]).version == 4 else cls.IPV6


@dataclass(frozen=True)
class Interface:
    """One network interface of one machine, plugged into one segment's bridge.

    ``addresses`` are CIDRs set from outside before boot (optional: a machine may get its
    address by DHCP instead), ``gateways`` the default routes set with them (an address per
    family, on one of ``addresses``' networks): a machine without a network configuration of
    its own gets its route as it gets its address.
    """

    machine: str
    name: str
    segment: str
    mac: str
    addresses: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, value in (("interface", self.name), ("segment", self.segment)):
            if not _IFNAME.fullmatch(value) or len(value) > IFNAMSIZ:
                raise UsageError(f"{self.machine}: bad {what} name {value!r}: use at most "
                                 f"{IFNAMSIZ} characters of [a-zA-Z0-9_.-], starting with a letter")
        if not _ID.fullmatch(self.machine):
            raise UsageError(f"bad machine name {self.machine!r}: use [a-z0-9-]")
        if not _MAC.fullmatch(self.mac):
            raise UsageError(f"{self.machine}/{self.name}: bad MAC {self.mac!r}: "
                             "write it lowercase as 02:00:00:00:00:01")
        for cidr in self.addresses:
            try:
                ipaddress.ip_interface(cidr)
            except ValueError:
                raise UsageError(f"{self.machine}/{self.name}: bad address {cidr!r}: "
                                 "write it as a CIDR, e.g. 192.168.1.1/23") from None
        networks = [ipaddress.ip_interface(cidr).network for cidr in self.addresses]
        for gateway in self.gateways:
            try:
                on_link = any(ipaddress.ip_address(gateway) in net for net in networks)
            except ValueError:
                raise UsageError(f"{self.machine}/{self.name}: bad gateway {gateway!r}: "
                                 "write it as an address, e.g. 192.168.1.254") from None
            if not on_link:
                raise UsageError(f"{self.machine}/{self.name}: gateway {gateway} is on none of its "
                                 f"networks ({', '.join(map(str, networks)) or 'no address'}): give it "
                                 "an address of one of them")


def port_name(machine: str, ifname: str) -> str:
    """Name of the veth end on the switch side of ``machine``'s ``ifname``:
    ``<machine>-<ifname>`` or, if too long for the kernel, the machine's name and a digest."""
    name = f"{machine}-{ifname}"
    if len(name) <= IFNAMSIZ:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{machine[:IFNAMSIZ - 7]}-{digest}"


def switch_port(interface: Interface) -> str:
    """`port_name` of ``interface``."""
    return port_name(interface.machine, interface.name)


def validate(interfaces: Sequence[Interface]) -> None:
    """Reject duplicate interfaces, MACs, addresses and switch port names, naming the culprits."""
    seen: dict[str, str] = {}
    for iface in interfaces:
        where = f"{iface.machine}/{iface.name}"
        keys = [f"interface {where}", f"MAC {iface.mac}", f"switch port {switch_port(iface)}"]
        keys += [f"address {ipaddress.ip_interface(a).ip}" for a in iface.addresses]
        for key in keys:
            if key in seen:
                raise UsageError(f"{key} is used twice: by {seen[key]} and by {where}")
            seen[key] = where
