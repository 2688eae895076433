"""What a machine listens on, read from ``ss``: how `Machine.wait_for_open_port` tells a
service that has bound its address from one still starting."""

from __future__ import annotations

WILDCARDS = ("0.0.0.0", "*", "::")


def listening_on(ss_output: str, port: int, address: str | None = None) -> bool:
    """Whether ``ss -Hln`` output shows a socket on ``port`` that serves ``address`` (if given):
    bound to it, or to a wildcard address."""
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        host, _, got = local.rpartition(":")
        host = host.split("%")[0].strip("[]")  # [2001:db8::1]:53, [fe80::1%lan0]:547
        if got == str(port) and (address is None or host in (address, *WILDCARDS)):
            return True
    return False
