"""The lab drawn from the inventory as a graphviz graph (docs/lab.dot, docs/lab.svg).

Its own module because no machine reads it: stages/docs.py draws it, and no stage uses it,
so no stage's key hashes it and editing the drawing rebuilds nothing.
"""

from __future__ import annotations

from harness import Inventory
from harness.model.inventory import Kind


def topology_dot(inv: Inventory) -> str:
    """The lab as a graphviz graph: one node per segment and per machine, edges labelled with
    interface and address."""
    lines = ["graph lab {", '  graph [rankdir=LR, fontname="sans"];',
             '  node [fontname="sans", fontsize=11]; edge [fontname="sans", fontsize=9];']
    for seg in inv.segments.values():
        pool = "".join(f"\\npool {p[0]} - {p[1]}" for p in (seg.pool, seg.pool6) if p)
        nets = "\\n".join(str(seg.network(f)) for f in seg.families())
        lines.append(f'  "{seg.name}" [shape=box, style="rounded,filled", fillcolor="#e8f0fe", '
                     f'label="{seg.name}\\n{nets}{pool}"];')
    for host in inv.hosts.values():
        extra = f"\\n({', '.join(host.aliases)})" if host.aliases else ""
        shape = "box, peripheries=2" if host.router else "ellipse" if host.kind is Kind.USER else "box"
        lines.append(f'  "{host.name}" [shape={shape}, label="{host.name}\\n{host.kind} / '
                     f'{host.room}{extra}"];')
        for nic in host.nics:
            held = "\\n".join(str(nic.address_of(f)) for f in nic.families())
            lines.append(f'  "{host.name}" -- "{nic.segment}" [label="{nic.name} {held}'
                         f'\\n{nic.config}"];')
    return "\n".join([*lines, "}"]) + "\n"
