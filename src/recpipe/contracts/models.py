"""Models side by side, defined once: where each loaded model's vectors live in the vector
database, what records which model serves, and how an experiment assigns a shopper to a variant.

Every loaded model version has its own tables (``item_emb__v<slug>``, ``user_emb__v<slug>``,
``recpipe_model__v<slug>``, each with its indexes) that never change after the load; the seed's
names ``item_emb`` and ``user_emb`` are views of the serving model's tables. Serving queries the
versioned tables by name, so a promotion, a rollback or an experiment never pairs one model's
user tower with another's item vectors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MODELS = "recpipe_models"  # one row per loaded model version: its tables, counts, gate verdict
PROMOTIONS = "recpipe_promotions"  # every change of the serving model, in order
EXPERIMENTS = "recpipe_experiments"  # experiments, running and stopped (with their final report)
POPULARITY = "popularity"  # an experiment's variant that shows the most bought products

CREATE_MODELS = (f"CREATE TABLE IF NOT EXISTS {MODELS} (version text PRIMARY KEY, slug text NOT NULL UNIQUE, "
                 "artifacts text, objective text, items integer, users integer, loaded_at timestamptz NOT NULL, "
                 "metrics jsonb, gate jsonb)")
CREATE_PROMOTIONS = (f"CREATE TABLE IF NOT EXISTS {PROMOTIONS} (seq bigserial PRIMARY KEY, version text NOT NULL, "
                     "previous text, action text NOT NULL, at timestamptz NOT NULL, note text)")
CREATE_EXPERIMENTS = (f"CREATE TABLE IF NOT EXISTS {EXPERIMENTS} (name text PRIMARY KEY, spec jsonb NOT NULL, "
                      "started_at timestamptz NOT NULL, stopped_at timestamptz, report jsonb)")
# the actions a promotion record can have; ``rollback`` undoes the latest promotion still standing
ACTIONS = ("first", "gate", "force", "promote", "rollback", "adopted")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class ModelTables:
    """The tables holding one model version's vectors and serving files."""

    version: str
    items: str
    users: str
    files: str

    @classmethod
    def of(cls, version: str, slug: str) -> ModelTables:
        return cls(version, f"item_emb__v{slug}", f"user_emb__v{slug}", f"recpipe_model__v{slug}")


def slug(version: str) -> str:
    """A short, table-name-safe key for a model version (versions are free text)."""
    return hashlib.sha256(version.encode("utf-8")).hexdigest()[:12]


def _named(v: str) -> str:
    if not NAME.match(v):
        raise ValueError("a name is letters, digits, '.', '_' or '-' (up to 63), starting with a letter or digit")
    return v


class Variant(BaseModel):
    """One arm of an experiment: a loaded model version, or ``popularity``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    target: str  # a model version, or POPULARITY
    share: float = Field(gt=0, le=100)  # percent of the shoppers

    _name = field_validator("name")(_named)

    @property
    def popularity(self) -> bool:
        return self.target == POPULARITY


class Experiment(BaseModel):
    """An experiment: shoppers split among variants by their customer number (a visitor by
    session), the same shopper always in the same variant (``assign``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    variants: tuple[Variant, ...]
    started_at: dt.datetime
    stopped_at: dt.datetime | None = None

    _name = field_validator("name")(_named)

    @model_validator(mode="after")
    def _shares(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError("an experiment needs two or more variants with different names")
        if abs(sum(v.share for v in self.variants) - 100) > 1e-6:
            raise ValueError("the variants' shares must add up to 100")
        return self

    def spec(self) -> dict[str, Any]:
        return {"variants": [v.model_dump() for v in self.variants]}

    def assign(self, unit: int | str) -> Variant:
        """The variant of a shopper (a customer number, else a session id): a hash of the
        experiment's name and the shopper, so it does not change between requests, processes or
        paths, and differs between experiments."""
        point = bucket(self.name, unit)
        edge = 0.0
        for v in self.variants:
            edge += v.share
            if point < edge:
                return v
        return self.variants[-1]

    def versions(self) -> list[str]:
        return [v.target for v in self.variants if not v.popularity]


def bucket(name: str, unit: int | str) -> float:
    """A uniform point in [0, 100) for (experiment, shopper)."""
    kind = "c" if isinstance(unit, int) else "s"
    digest = hashlib.sha256(f"{name}\x1f{kind}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def split(shares: list[float] | None, n: int) -> list[float]:
    """Shares for ``n`` variants: the given ones (the last takes the rest), else equal."""
    if not shares:
        return [100 / n] * n
    if len(shares) == n - 1:
        return [*shares, 100 - sum(shares)]
    return list(shares)
