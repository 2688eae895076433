"""The bench's report: its figures as a markdown table, beside the targets and the figures
published before (the ratio says how far each moved)."""

from __future__ import annotations

from typing import Any

TARGETS = {
    "resume pas to all-ready": "<= 1.0 s",
    "fresh_lab overhead per scenario": "<= 0.3 s",
    "harness up + down, back to back": "<= 1.5 s",
    "warm suite, -n 2": "<= 12 s",
    "warm suite spread, -n 2": "< 20% of the median",
    "warm suite vs cold": ">= 10x faster",
    "snapshot chain vs last stage": "< 1.3x",
    "harness ls, 100 snapshots": "< 1 s",
    "kept failure bundle": "< 5 MiB",
    "whole mutation run": "< 15 min",
}
# The figures published before (bench/README.md, 2026-11-23; up + down from issue 16), for
# the ratio column: measured on the lab of that day (six machines, IPv4 only, one seat).
PUBLISHED = {
    "resume pas to all-ready": 1.94,
    "fresh_lab overhead per scenario": 2.00,
    "harness up + down, back to back": 4.2,
    "warm suite, -n 2": 27.44,
}

def fmt(s: dict[str, Any], unit: str = "s") -> str:
    return f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f} {unit} (n={s['n']})"


def markdown(results: dict[str, Any]) -> str:
    lines = ["| measurement | min / median / max |", "| --- | --- |"]
    for name, s in results.get("cold", {}).items():
        lines.append(f"| cold build: {name} | {fmt(s)} |")
    for name, s in results.get("resume", {}).items():
        lines.append(f"| resume from {name} to all-ready | {fmt(s['ready'])} |")
        lines.append(f"| tear down the {name} lab | {fmt(s['down'])} |")
    if "floor" in results:
        f = results["floor"]
        lines.append(f"| floor: clone every root of the last stage | {fmt(f['clone'])} |")
        lines.append(f"| floor: one bare machine, clone to running | {fmt(f['bare boot'])} |")
        lines.append(f"| floor: the lab's machines' boot CPU | {fmt(f['lab boot cpu'], 'CPU-s')} |")
        lines.append(f"| floor: that CPU over {f['cores']} cores | {f['lab cpu floor']:.2f} s |")
    if "updown" in results:
        lines.append(f"| harness up + down, back to back | {fmt(results['updown'])} |")
    if "fresh_lab" in results:
        f = results["fresh_lab"]
        fresh, shared = f["fresh test"]["median"], f["shared test"]["median"]
        lines.append(f"| fresh_lab overhead, back to back (no time for a spare) | {f['per scenario']:.2f} s "
                     f"(median fresh {fresh:.2f} s - median shared {shared:.2f} s) |")
    if "fresh_lab in suite" in results:
        f = results["fresh_lab in suite"]
        lines.append(f"| fresh_lab overhead in the suite (set-up + teardown) | {f['per scenario']:.2f} s "
                     f"(median fresh {f['fresh test']:.2f} s - median shared {f['shared test']:.2f} s) |")
    for name, s in results.get("suite", {}).items():
        lines.append(f"| warm scenario suite, {name} | {fmt(s)} |")
    if "families" in results:
        f = results["families"]
        for kept in ("ipv4", "ipv4,ipv6"):
            lines.append(f"| warm scenario suite, -n 1, --families={kept} ({f[kept]['tests']} tests) "
                         f"| {fmt(f[kept])} |")
        lines.append(f"| ratio dual-stack / IPv4 alone (medians) | {f['ratio']:.2f}x |")
    if "ancestor" in results:
        a = results["ancestor"]
        lines.append(f"| ancestor's fixed waits, pas lab | {fmt(a['baseline'])} |")
        lines.append(f"| harness, same lab | {fmt(a['harness'])} |")
        lines.append(f"| ratio ancestor / harness (medians) | {a['ratio']:.1f}x |")
    if "disk" in results:
        d = results["disk"]
        lines.append(f"| snapshot chain, unique bytes | {d['chain unique bytes'] / 2**20:.0f} MiB "
                     f"(referenced {d['chain referenced bytes'] / 2**20:.0f} MiB) |")
        lines.append(f"| last stage alone, unique bytes | {d['last stage unique bytes'] / 2**20:.0f} MiB |")
        lines.append(f"| chain / last stage | {d['ratio']:.2f}x |")
    if "ls" in results:
        lines.append(f"| harness ls, 100 snapshots | {fmt(results['ls'])} |")
    if "bundle" in results:
        b = results["bundle"]
        lines.append(f"| kept failure bundle (incremental / whole) | {b['incremental']} MiB / "
                     f"{b['whole']} MiB |")
    if "mutate" in results:
        m = results["mutate"]
        lines.append(f"| whole mutation run | {m['seconds'] / 60:.1f} min, {m['killed']} of "
                     f"{m['counted']} killed |")
    if "warm_vs_cold" in results:
        lines.append(f"| warm suite vs cold (cold build + warm suite) | {results['warm_vs_cold']:.1f}x |")
    lines += ["", "| target | wanted | measured | published before | now / before |",
              "| --- | --- | --- | --- | --- |"]
    for name, wanted in TARGETS.items():
        measured = results.get("targets", {}).get(name, "not measured")
        before = PUBLISHED.get(name)
        now = _leading_number(measured)
        ratio = f"{now / before:.2f}" if before and now is not None else ""
        lines.append(f"| {name} | {wanted} | {measured} | {f'{before:g} s' if before else ''} | {ratio} |")
    return "\n".join(lines) + "\n"


def _leading_number(text: str) -> float | None:
    """``1.23`` of ``"1.23 s (in the suite)"``; None if the text does not start with one."""
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


