"""An experiment's report: the lists each variant was shown while it ran, what they earned
(``report.attribution``), and each variant's difference from the first (the control) with its
95% interval (Newcombe's hybrid score interval, from the two Wilson intervals), per source.

A difference whose interval excludes 0 is a finding; ``sessions_to_exclude_zero`` says, in the
order shoppers came, after how many sessions the click-through difference first did so.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any

from recpipe.contracts.models import Experiment
from recpipe.report.attribution import Line, Rate, outcomes, overall, per_list


@dataclass(frozen=True)
class Difference:
    """``variant`` − ``control`` of one rate, and its 95% interval."""

    difference: float
    low: float
    high: float

    @classmethod
    def of(cls, a: Rate, b: Rate) -> Difference:
        """Newcombe (1998), method 10: the hybrid score interval of p_a − p_b."""
        d = a.rate - b.rate
        return cls(d, d - math.sqrt((a.rate - a.low) ** 2 + (b.high - b.rate) ** 2),
                   d + math.sqrt((a.high - a.rate) ** 2 + (b.rate - b.low) ** 2))

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class VariantLine:
    source: str
    variant: str
    target: str  # the model version or "popularity"
    line: Line
    ctr_vs_control: Difference | None  # None: the control itself
    cart_vs_control: Difference | None
    purchase_vs_control: Difference | None

    def to_json(self) -> dict[str, Any]:
        out = {"source": self.source, "variant": self.variant, "target": self.target} | self.line.to_json()
        for name in ("ctr_vs_control", "cart_vs_control", "purchase_vs_control"):
            value = getattr(self, name)
            out[name] = None if value is None else asdict(value) | {"excludes_zero": value.excludes_zero}
        return out


def window(impressions: Any, experiment: Experiment, until: dt.datetime | None = None) -> Any:
    """The impressions served while ``experiment`` ran, in one of its variants."""
    import pyarrow.compute as pc

    end = experiment.stopped_at or until or dt.datetime.now(dt.UTC)
    names = [v.name for v in experiment.variants]
    mask = pc.and_(pc.and_(pc.greater_equal(impressions["served_at"], experiment.started_at),
                           pc.less_equal(impressions["served_at"], end)),
                   pc.is_in(impressions["variant"], value_set=_strings(names)))
    return impressions.filter(pc.fill_null(mask, False))


def _strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


def lines(impressions: Any, events: Any, experiment: Experiment) -> list[VariantLine]:
    """Per source and variant (in the experiment's order), with differences from the first."""
    got, _ = outcomes(window(impressions, experiment), events)
    summed: dict[tuple[str, str], list[int]] = {}
    for x in overall(got):
        total = summed.setdefault((x.source, x.variant), [0, 0, 0, 0])
        for i, count in enumerate((x.impressions, x.clicks, x.carts, x.purchases)):
            total[i] += count
    out = []
    first = experiment.variants[0].name
    for source in sorted({s for s, _ in summed}):
        control = Line(source, "", "", first, "", *summed[(source, first)]) if (source, first) in summed else None
        for v in experiment.variants:
            counts = summed.get((source, v.name))
            if counts is None:
                continue
            line = Line(source, "", "", v.name, "", *counts)
            if control is None or v.name == first:
                out.append(VariantLine(source, v.name, v.target, line, None, None, None))
                continue
            out.append(VariantLine(source, v.name, v.target, line, Difference.of(line.ctr, control.ctr),
                                   Difference.of(line.cart_rate, control.cart_rate),
                                   Difference.of(line.purchase_rate, control.purchase_rate)))
    return out


def sessions_to_exclude_zero(impressions: Any, events: Any, experiment: Experiment, *, source: str = "service",
                             step: int = 50) -> int | None:
    """After how many sessions (in the order their first list was shown, looked at every
    ``step``) the click-through difference of the second variant from the first first excluded
    zero; None: it never did."""
    import pyarrow.compute as pc

    shown = window(impressions, experiment)
    shown = shown.filter(pc.equal(shown["source"], source))
    if len(shown) == 0 or len(experiment.variants) < 2:
        return None
    a, b = experiment.variants[0].name, experiment.variants[1].name
    sessions: dict[str, list[Any]] = {}  # session -> [first shown, variant, lists, clicks]
    for session, variant, at, clicked in per_list(shown, events, "i.session_id, i.variant, i.served_at"):
        if session is None:
            continue
        s = sessions.setdefault(session, [at, variant, 0, 0])
        s[0], s[2], s[3] = min(s[0], at), s[2] + 1, s[3] + int(clicked)
    counts = {a: [0, 0], b: [0, 0]}
    ordered = sorted(sessions.values(), key=lambda s: s[0])
    for n, (_at, arm, shown_lists, clicks) in enumerate(ordered, 1):
        if arm in counts:
            counts[arm][0] += clicks
            counts[arm][1] += shown_lists
        if n % step == 0 or n == len(ordered):
            ca, cb = Rate.of(*counts[a]), Rate.of(*counts[b])
            if counts[a][1] and counts[b][1] and Difference.of(cb, ca).excludes_zero:
                return n
    return None


def run(lake: Any, experiment: Experiment) -> dict[str, Any]:
    """The experiment's report from the lake's impressions and events (``recpipe etl events``)."""
    from recpipe.contracts.activity import EVENTS, IMPRESSIONS
    from recpipe.etl.online import read_online

    impressions = read_online(lake, IMPRESSIONS)
    events = read_online(lake, EVENTS, ["recommendation_id", "kind", "product_code", "event_time"])
    got = lines(impressions, events, experiment)
    return {"experiment": experiment.name, "variants": [v.model_dump() for v in experiment.variants],
            "started_at": experiment.started_at.isoformat(),
            "stopped_at": experiment.stopped_at.isoformat() if experiment.stopped_at else None,
            "reported_at": dt.datetime.now(dt.UTC).isoformat(),
            "lines": [x.to_json() for x in got],
            "sessions_to_exclude_zero": {source: sessions_to_exclude_zero(impressions, events, experiment, source=source)
                                         for source in sorted({x.source for x in got})}}
