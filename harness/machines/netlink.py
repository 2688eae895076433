"""pyroute2 in a lab's namespaces: a handle that is always closed, a link's index by name. What
the lab's network and the splice of impaired links both do with netlink."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pyroute2 import NetNS

from harness.core.errors import HarnessError

NETNS_DIR = Path("/run/netns")  # where named namespaces are mounted (ip netns, pyroute2)


@contextlib.contextmanager
def namespace(name: str) -> Iterator[NetNS]:
    """A netlink handle in network namespace ``name``, closed on the way out (an open one
    holds a socket and, for pyroute2, a thread)."""
    ns = NetNS(name)
    try:
        yield ns
    finally:
        ns.close()


def index(ns: NetNS, ifname: str) -> int:
    """The index of interface ``ifname`` in ``ns``; a `HarnessError` naming it when it is absent."""
    found = ns.link_lookup(ifname=ifname)
    if not found:
        raise HarnessError(f"interface {ifname} not found in its namespace")
    return int(found[0])
