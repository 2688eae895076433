"""The ``harness impair`` verb: delay, jitter, rate, reordering, duplicates, corruption and loss
on a link of a lab started with ``harness up`` (the same as ``lab.network.impair`` in a
scenario: `harness.machines.splice`), listed, and healed."""

from __future__ import annotations

import argparse

from harness.cli import labs as cli_labs
from harness.core.errors import UsageError
from harness.machines import splice as links
from harness.machines.impair import PERCENTS, Impairment

EVERY = "*"  # --heal without a target
SETTINGS = ("delay", "jitter", "rate", *PERCENTS)
VERBS = {"reorder": "held back while later ones overtake them", "duplicate": "sent twice",
         "corrupt": "with one bit flipped", "loss": "lost"}


def add_arguments(verb: argparse.ArgumentParser) -> None:
    """The verb's arguments: LAB, TARGET and one option per setting."""
    verb.add_argument("lab", metavar="LAB", help="a lab started with `harness up` (see `harness ls`)")
    verb.add_argument("target", metavar="TARGET", nargs="?",
                      help="a machine (its every link) or a segment (each of its machines' links); "
                           "without it: list what is impaired")
    verb.add_argument("--delay", help="each way, as tc writes it: 200ms, 1.5s")
    verb.add_argument("--jitter", help="± this around the delay, uniformly, frames kept in order: 50ms")
    verb.add_argument("--rate", help="bit/s at most, as tc writes it: 10mbit, 512kbit")
    for name in PERCENTS:
        verb.add_argument(f"--{name}", type=float, metavar="PERCENT",
                          help=f"percent of frames {VERBS[name]}")
    verb.add_argument("--seed", type=int, default=0, help="fixes every random draw (default 0)")
    verb.add_argument("--heal", nargs="?", const=EVERY, metavar="TARGET",
                      help="remove the impairment of TARGET (of every link, without TARGET)")
    verb.epilog = ("harness impair LAB pas-r11p1 --delay 200ms --jitter 50ms --loss 1; "
                   "harness impair LAB lan --rate 10mbit; harness impair LAB --heal")


def cmd_impair(args: argparse.Namespace) -> int:
    """Make a running lab's links misbehave (delay, jitter, rate, reorder, duplicate, corrupt,
    loss), both ways and both families, until healed; without TARGET, list what is impaired."""
    record = cli_labs._one_lab(args.lab)
    lab_id = str(record["id"])
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    if args.heal:
        if given:
            raise UsageError("impair: --heal takes no settings: heal first, then impair anew")
        if args.heal != EVERY and args.target not in (None, args.heal):
            raise UsageError(f"impair: heal {args.target} or {args.heal}? give one target")
        target = args.target if args.heal == EVERY else args.heal
        healed = links.heal(lab_id, target)
        if target and not healed:
            raise UsageError(f"lab {lab_id}: {target} is not impaired; impaired: "
                             f"{', '.join(e['target'] for e in links.active(lab_id)) or 'nothing'}")
        names = ", ".join(e["target"] for e in healed)
        print(f"lab {lab_id}: healed {names or 'nothing (none was impaired)'}")
        return 0
    if args.target is None:
        if given:
            raise UsageError("impair: which machine or segment? give TARGET before the settings")
        print(links.describe(lab_id) or f"lab {lab_id}: no impaired link", end="")
        return 0
    settings = Impairment.parse(seed=args.seed, **given)
    links.apply(lab_id, args.target, settings)
    print(f"lab {lab_id}: {args.target}: {settings.describe()} "
          f"(heal with `harness impair {lab_id} --heal {args.target}`)")
    return 0
