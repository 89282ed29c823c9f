"""Faults on demand: which call gets which misbehaviour.

A fault spec is KIND[:WHEN]:
    KIND  429 | 500 | 502 | 503 | 504 | 521 | drop | apply-drop | slow | non-json
          | 461 | 8015 (a customer lookup's own answers)
    WHEN  P%        that share of calls, drawn with the seed (e.g. 5%)
          #N[,M..]  those calls, counted from 1 in arrival order (e.g. #1,#3 or #1,3)
          omitted   every call
The calls faulted and counted (in one sequence) are the two revoke endpoints and the customer
lookup; the first matching spec wins. A lookup changes nothing, so `apply-drop` and `slow` on
it are a dropped and a late answer. `461` (HTTP 461, "Search Engine is busy, try after some
time") and `8015` ("Customer not found for the given identifiers", whoever the customer is) are
answers of the lookup only: a revoke they fall on is answered as usual.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from batch_revoke.errors import ConfigError


class FaultKind(StrEnum):
    TOO_MANY = "429"
    ERROR_500 = "500"
    ERROR_502 = "502"
    ERROR_503 = "503"
    ERROR_504 = "504"
    BUSY_521 = "521"  # "multiple actions running for the same customer; retry"
    DROP = "drop"  # close the connection without doing anything
    APPLY_DROP = "apply-drop"  # carry out the call, then close without answering
    SLOW = "slow"  # carry out the call, answer after --slow-seconds
    NON_JSON = "non-json"  # an HTML error page with status 200, nothing done
    SEARCH_BUSY = "461"  # a lookup's "Search Engine is busy, try after some time"
    NOT_FOUND_8015 = "8015"  # a lookup's "Customer not found for the given identifiers"

    @property
    def http_status(self) -> int | None:
        if self in _LOOKUP_ONLY:
            return None  # the lookup's own answers: their status is the sandbox's to pick
        return int(self.value) if self.value.isdigit() else None

    @property
    def lookup_only(self) -> bool:
        """An answer only the customer lookup gives: no fault on a revoke."""
        return self in _LOOKUP_ONLY

    @property
    def applies(self) -> bool:
        """Whether the call is carried out before the fault shows."""
        return self in (FaultKind.APPLY_DROP, FaultKind.SLOW)


_LOOKUP_ONLY = frozenset({FaultKind.SEARCH_BUSY, FaultKind.NOT_FOUND_8015})


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: FaultKind
    rate: float = 1.0  # 0..1, used when `numbers` is empty
    numbers: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        kind_text, _, when = text.strip().partition(":")
        try:
            kind = FaultKind(kind_text.strip().lower())
        except ValueError:
            kinds = ", ".join(k.value for k in FaultKind)
            raise ConfigError(f"fault {text!r}: unknown kind", f"use one of {kinds}") from None
        when = when.strip()
        if not when:
            return cls(kind)
        rate = re.fullmatch(r"(\d+(?:\.\d+)?)%", when)
        if rate and float(rate.group(1)) <= 100:
            return cls(kind, float(rate.group(1)) / 100)
        numbers = re.fullmatch(r"#?\d+(\s*,\s*#?\d+)*", when)
        if numbers:
            listed = frozenset(int(n) for n in re.findall(r"\d+", when))
            if 0 in listed:
                raise ConfigError(
                    f"fault {text!r}: requests are numbered from #1", "e.g. drop:#1,#5"
                )
            return cls(kind, numbers=listed)
        raise ConfigError(
            f"fault {text!r}: {when!r} is neither a rate nor request numbers",
            "write e.g. 429:5% or drop:#2,#5",
        )

    def __str__(self) -> str:
        if self.numbers:
            return f"{self.kind}:#" + ",#".join(str(n) for n in sorted(self.numbers))
        return f"{self.kind}:{self.rate * 100:g}%"


class FaultPlan:
    """Decides, request by request, which fault (if any) applies. Repeatable for a seed."""

    def __init__(self, specs: Iterable[FaultSpec] = (), seed: int = 0) -> None:
        self.specs = tuple(specs)
        self._random = random.Random(seed)
        self.count = 0

    def next_fault(self) -> FaultKind | None:
        self.count += 1
        chosen = None
        for spec in self.specs:
            # Draw for every rate spec, so one spec's draws do not depend on another's.
            hit = self.count in spec.numbers if spec.numbers else self._random.random() < spec.rate
            if hit and chosen is None:
                chosen = spec.kind
        return chosen


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """N calls per window, windows aligned to the clock (a minute starts at :00), as API
    gateways commonly count (Kong's rate-limiting plugin does)."""

    count: int
    period: float  # seconds

    @classmethod
    def parse(cls, text: str) -> RateLimitSpec:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|min|m)\s*", text)
        if match:
            count, size, unit = int(match.group(1)), float(match.group(2) or 1), match.group(3)
            period = size * (60.0 if unit.startswith("m") else 1.0)
            if count >= 1 and period > 0:
                return cls(count, period)
            if count == 0:
                raise ConfigError(
                    f"--sandbox-rate-limit {text!r} would refuse every call",
                    "allow at least 1 call per window, e.g. 100/min; leave it out for no limit",
                )
        raise ConfigError(
            f"--sandbox-rate-limit {text!r} is not N/s, N/min or N/<seconds>s",
            "e.g. --sandbox-rate-limit 100/min (Capillary demo clusters) or 40/10s",
        )

    def window(self, now: float) -> int:
        return int(now // self.period)

    def left(self, now: float) -> float:
        """Seconds until the current window ends."""
        return (self.window(now) + 1) * self.period - now
