"""The promotion gate: a newly loaded model serves only if its offline figures (from its
manifest) are not worse than the serving model's beyond a tolerance. Pure: two manifests'
``metrics`` in, a verdict out; ``vectors load`` prints it and records it with the version.

Each figure is compared relative to the serving model's: a higher-is-better figure passes at
``new >= serving * (1 - tolerance)``, a lower-is-better one at ``new <= serving * (1 + tolerance)``.
A figure the serving model measured and the new one did not fails; one only the new model has is
not judged, nor one either model measured on fewer than ``MIN_EXAMPLES`` held-out customers (on
a handful one example moves the figure by more than any tolerance). Different objectives cannot
be compared, and fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

_HELD = ("users",)
_CUSTOMERS = ("next_item", "known_customers", "session")
_VISITORS = ("next_item", "new_visitors", "session")
# (name, path in the manifest's metrics, higher is better, path of how many it was measured on)
FIGURES: tuple[tuple[str, tuple[str, ...], bool, tuple[str, ...]], ...] = (
    ("recall@10", ("recall_at_10",), True, _HELD),
    ("ndcg@10", ("ndcg_at_10",), True, _HELD),
    ("next item hit@10 (customers)", (*_CUSTOMERS, "hit_at_10"), True, (*_CUSTOMERS, "examples")),
    ("next item mrr@10 (customers)", (*_CUSTOMERS, "mrr_at_10"), True, (*_CUSTOMERS, "examples")),
    ("next item hit@10 (visitors)", (*_VISITORS, "hit_at_10"), True, (*_VISITORS, "examples")),
    ("rmse", ("rmse",), False, ("pairs",)),
)
DEFAULT_TOLERANCE = 0.05
MIN_EXAMPLES = 100


@dataclass(frozen=True)
class Check:
    figure: str
    new: float | None
    serving: float
    limit: float  # the worst value that passes
    passed: bool
    judged: bool = True  # False: measured on too few to judge (passes)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    tolerance: float
    serving: str | None  # the version judged against
    checks: list[Check] = field(default_factory=list)
    forced: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def figure(metrics: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = metrics
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def judge(new: dict[str, Any], serving: dict[str, Any] | None, *, serving_version: str | None,
          tolerance: float = DEFAULT_TOLERANCE) -> Verdict:
    """Whether a model with metrics ``new`` may replace one with ``serving`` (None: nothing serves)."""
    if serving is None or serving_version is None:
        return Verdict(True, "no model serves yet", tolerance, None)
    a, b = new.get("objective"), serving.get("objective")
    if a and b and a != b:
        return Verdict(False, f"a {a} model cannot be compared with the serving {b} model", tolerance,
                       serving_version)
    checks = []
    for name, path, higher, count in FIGURES:
        old = figure(serving, path)
        if old is None:
            continue
        value = figure(new, path)
        limit = old * (1 - tolerance) if higher else old * (1 + tolerance)
        few = [n for n in (figure(serving, count), figure(new, count)) if n is not None and n < MIN_EXAMPLES]
        if value is not None and few:
            checks.append(Check(name, value, old, round(limit, 6), True, judged=False))
            continue
        ok = value is not None and (value >= limit if higher else value <= limit)
        checks.append(Check(name, value, old, round(limit, 6), ok))
    if not checks:
        return Verdict(True, "neither manifest has figures the gate compares", tolerance, serving_version)
    failed = [c.figure for c in checks if not c.passed]
    if failed:
        return Verdict(False, f"worse than the serving model beyond {tolerance:.0%}: {', '.join(failed)}",
                       tolerance, serving_version, checks)
    return Verdict(True, f"within {tolerance:.0%} of the serving model or better on every figure", tolerance,
                   serving_version, checks)
