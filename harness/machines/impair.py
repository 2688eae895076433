"""What a misbehaving link does: delay, jitter, rate, reordering, duplicates, corruption, loss.

This kernel has no netem (`tc qdisc add ... netem` says "Specified qdisc kind is unknown"), so
an impaired link is spliced through a relay process (`harness.machines.relay`) that forwards its
frames, both ways, as this module's `Schedule` decides: when each frame leaves, whether it is
lost, sent twice or has a bit flipped. Everything here is pure (no root, no kernel): the
settings, their validation (one line saying what to write instead) and the decisions, drawn
from a random generator seeded per link and direction, so that the same frames meet the same
fates on every run.

>>> Impairment.parse(delay="200ms", jitter="50ms", loss=1).describe()
'delay 200ms ±50ms, loss 1%, seed 0'
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.core.errors import UsageError

MAX_DELAY = 10.0  # seconds: a frame held longer is a cut link, which `set_link` makes
MIN_RATE = 8_000  # bit/s: below it, one full frame takes more than a second and a half
QUEUE_LIMIT = 1.0  # seconds of frames a rate-limited link holds before it drops (tbf's latency)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s)")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_BITS = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}
PERCENTS = ("reorder", "duplicate", "corrupt", "loss")


def duration(name: str, value: float | str) -> float:
    """Seconds from ``value``: a number of seconds, or text as tc writes it (``200ms``, ``1.5s``)."""
    if isinstance(value, str):
        found = _DURATION.fullmatch(value.strip())
        if not found:
            raise UsageError(f"impair: bad {name} {value!r}: write it as 200ms, 50us or 1.5s")
        return float(found.group(1)) * _SECONDS[found.group(2)]
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise UsageError(f"impair: bad {name} {value!r}: give seconds (0.2) or text (200ms), not negative")
    return float(value)


def bit_rate(value: int | str) -> int:
    """Bits per second from ``value``: a number, or text as tc writes it (``10mbit``, ``512kbit``)."""
    if isinstance(value, str):
        found = _RATE.fullmatch(value.strip().lower())
        if not found:
            raise UsageError(f"impair: bad rate {value!r}: write it as 10mbit, 512kbit or 1gbit "
                             "(bits; tc's bps means bytes, too easily misread)")
        return int(float(found.group(1)) * _BITS[found.group(2)])
    if isinstance(value, bool) or value < 0:
        raise UsageError(f"impair: bad rate {value!r}: give bits per second (10_000_000) or text (10mbit)")
    return int(value)


def _text(seconds: float) -> str:
    return f"{seconds * 1e3:g}ms" if seconds < 10 else f"{seconds:g}s"


@dataclass(frozen=True)
class Impairment:
    """One link's misbehaviour, applied alike to both directions (as Mininet's links do: a
    round trip through a link of ``delay`` takes twice that).

    ``delay`` and ``jitter`` in seconds: each frame waits ``delay`` ± up to ``jitter``
    (uniformly), in order: jitter alone does not reorder, as a real queue does not.
    ``reorder`` % of the frames are held back for twice their wait, and the frames behind them
    overtake them; so it needs a delay. (netem sends its reordered frames at once instead;
    held back, no frame is ever faster than the delay, so what a scenario shows about a slow
    link holds on every run.) ``rate`` in bit/s: frames leave no faster than that, and a queue of more than
    a second's worth drops (0: no limit). ``duplicate`` % are sent twice, ``corrupt`` % get one
    bit flipped after their checksums are complete (the receiver drops them, as a bad cable's),
    ``loss`` % are dropped. ARP, IPv6 neighbour discovery and multicast listener reports pass
    at once, untouched, and draw nothing from the generator: a lab retries a neighbour query
    every 100 ms, three times (`harness.machines.network.ND_RETRANS_MS`), so behind a delay of more
    than 150 ms every neighbour would fail, where a real link's latency lies beyond the
    neighbour (a WAN, a congested switch); a lost one would lose packets in bursts, not a
    share (as in `LabNetwork.drop`); and when the switch's bridge reports its groups is no
    business of a scenario's.
    ``seed`` fixes every random draw: the same frames meet the same fates on every run.
    """

    delay: float = 0.0
    jitter: float = 0.0
    rate: int = 0
    reorder: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    loss: float = 0.0
    seed: int = 0

    @classmethod
    def parse(cls, *, delay: float | str = 0.0, jitter: float | str = 0.0, rate: int | str = 0,
              reorder: float = 0.0, duplicate: float = 0.0, corrupt: float = 0.0, loss: float = 0.0,
              seed: int = 0) -> Impairment:
        """Settings from what a scenario or the command line writes; a `UsageError` of one line
        for anything impossible, before anything is touched."""
        made = cls(duration("delay", delay), duration("jitter", jitter), bit_rate(rate), reorder,
                   duplicate, corrupt, loss, seed)
        made.check()
        return made

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Impairment:
        """Settings as `as_dict` wrote them (a relay's argument, the lab's record)."""
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(data) - set(fields)
        if unknown:
            raise UsageError(f"impair: unknown setting(s) {', '.join(sorted(unknown))}: "
                             f"known are {', '.join(fields)}")
        made = cls(**data)  # type: ignore[arg-type]
        made.check()
        return made

    def as_dict(self) -> dict[str, float | int]:
        """The settings as plain data (JSON)."""
        return dataclasses.asdict(self)

    def check(self) -> None:
        """Refuse impossible settings, naming the value and what to give instead."""
        for name in PERCENTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
                raise UsageError(f"impair: {name} is a percentage within 0..100, not {value!r}")
        if self.jitter > self.delay:
            raise UsageError(f"impair: jitter ({_text(self.jitter)}) exceeds delay ({_text(self.delay)}): "
                             "a frame cannot leave before it arrives; give a delay of at least the jitter")
        if self.delay + self.jitter > MAX_DELAY:
            raise UsageError(f"impair: delay + jitter of at most {MAX_DELAY:g}s, not "
                             f"{_text(self.delay + self.jitter)} (a link that never delivers is a cut "
                             "link: set_link(..., up=False))")
        if self.reorder and not self.delay:
            raise UsageError(f"impair: reorder={self.reorder:g} needs a delay: reordered frames are the "
                             "ones held back while the others overtake them")
        if self.rate and self.rate < MIN_RATE:
            raise UsageError(f"impair: rate of at least {MIN_RATE} bit/s (8kbit), not {self.rate}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise UsageError(f"impair: seed is an integer, not {self.seed!r}")
        if self == Impairment(seed=self.seed):
            raise UsageError("impair: nothing to do: give at least one of delay, jitter, rate, reorder, "
                             "duplicate, corrupt, loss (heal() removes impairments)")

    def describe(self) -> str:
        """One line, as tc would list it: ``delay 200ms ±50ms, loss 1%, seed 0``."""
        parts = []
        if self.delay:
            parts.append(f"delay {_text(self.delay)}" + (f" ±{_text(self.jitter)}" if self.jitter else ""))
        if self.rate:
            rate = next((f"{self.rate / n:g}{unit}" for unit, n in reversed(_BITS.items())
                         if self.rate >= n), f"{self.rate}bit")
            parts.append(f"rate {rate}")
        parts += [f"{name} {getattr(self, name):g}%" for name in PERCENTS if getattr(self, name)]
        return ", ".join([*parts, f"seed {self.seed}"])


@dataclass(frozen=True)
class Fate:
    """What becomes of one frame: when each copy leaves (none: lost) and, if it is corrupted,
    where its flipped bit is (a fraction of its length past the Ethernet header)."""

    departures: tuple[float, ...]
    corrupt: float | None = None


class Schedule:
    """The decisions for one direction of one link: `fate` of each frame as it arrives.

    >>> link = Schedule(Impairment(delay=0.1), "pas-host0", "up")
    >>> link.fate(0.0, 100, spared=False)
    Fate(departures=(0.1,), corrupt=None)
    """

    def __init__(self, settings: Impairment, link: str, direction: str) -> None:
        self.settings = settings
        # A string seed is hashed the same way by every Python (no PYTHONHASHSEED involved).
        self.random = random.Random(f"{settings.seed}/{link}/{direction}")
        self.last = 0.0  # when the last frame held in order leaves
        self.free = 0.0  # when a rate-limited link has sent everything queued

    def fate(self, now: float, size: int, *, spared: bool) -> Fate:
        """The fate of a frame of ``size`` bytes arriving at ``now`` (seconds, any clock).

        ``spared``: ARP, neighbour discovery or a multicast report, which leaves at once. Only
        impaired frames draw from the generator, so that other traffic (an IPv6 router
        solicitation at some moment) does not shift the fates of the rest."""
        s = self.settings
        if spared:
            return Fate((now,))
        draw = self.random.random
        if s.loss and draw() * 100 < s.loss:
            return Fate(())
        wait = s.delay + (draw() * 2 - 1) * s.jitter if s.jitter else s.delay
        if s.reorder and draw() * 100 < s.reorder:
            leave = now + 2 * wait  # held back: the frames behind it overtake it
        else:
            leave = max(now + wait, self.last)  # in order: no frame overtakes the one before it
            self.last = leave
        if s.rate:
            start = max(leave, self.free)
            if start - leave > QUEUE_LIMIT:
                return Fate(())  # the queue is full: tail drop
            self.free = leave = start + size * 8 / s.rate
        copies = 2 if s.duplicate and draw() * 100 < s.duplicate else 1
        corrupt = draw() if s.corrupt and draw() * 100 < s.corrupt else None
        return Fate((leave,) * copies, corrupt)
