"""Each interaction's customer, held as runs while the model trains.

The training set as read lies in customer order (``reading.read_ratings``), so the customer of
every interaction row is a run of equal values: where each run starts and whose it is say the
same thing. ``UserRuns`` answers a batch's rows by binary search, and ``folded`` lets the
customer per row go for the length of a fit (at 10M ratings 41 MB per interaction against 4.5 MB
per customer), and the rating when the objective reads none. The first epoch is where training's
memory peaks (``docs/scale.md``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from recpipe.ranking import in_customer_order
from recpipe.training.dataset import Ratings, row_type
from recpipe.training.fit import Inputs
from recpipe.training.model import torch


@dataclass(frozen=True)
class UserRuns:
    """Per interaction row, its user row: ``start[k]`` is the first row of run ``k``, whose user
    row is ``user[k]``. Indexed with a tensor of interaction rows like the array it stands for."""

    start: torch.Tensor  # ascending, start[0] == 0
    user: torch.Tensor
    n: int  # interaction rows
    dtype: np.dtype  # of the array it stands for

    @classmethod
    def of(cls, user: np.ndarray) -> UserRuns | None:
        """The runs of ``user``; None when it is not in customer order (events appended after
        the rows as read) or empty: then only the array says it."""
        if len(user) == 0 or not in_customer_order(user):
            return None
        start = np.flatnonzero(user[1:] != user[:-1]).astype(row_type(len(user)))
        start = np.concatenate([np.zeros(1, start.dtype), start + 1])
        return cls(torch.from_numpy(start), torch.from_numpy(user[start]), len(user), user.dtype)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        run = torch.searchsorted(self.start, rows.to(self.start.dtype), right=True) - 1
        return self.user[run]

    def numpy(self) -> np.ndarray:
        """The user row of every interaction, as an array again."""
        lengths = np.diff(self.start.numpy(), append=self.n)
        return np.repeat(self.user.numpy(), lengths).astype(self.dtype, copy=False)


@contextmanager
def folded(data: Ratings, inputs: Inputs, *, rating: bool = True) -> Iterator[None]:
    """For the block's length ``inputs.user`` is runs and ``data.user`` is empty; with
    ``rating=False`` (an objective that reads none: retrieval) the rating waits in a temporary
    file and ``data.rating``/``inputs.rating`` are empty too (10 MB at 10M ratings). No one may
    read what is empty meanwhile. After the block both are arrays again, equal to what they were.
    Rows not in customer order keep their customer per row."""
    runs, aside, set_aside = UserRuns.of(data.user), None, False
    try:
        if runs is not None:
            inputs.user = runs  # type: ignore[assignment]  # indexed as the tensor is
            data.user = np.zeros(0, data.user.dtype)
        if not rating:
            aside = tempfile.TemporaryFile(prefix="recpipe-rating-")  # noqa: SIM115 (closed below)
            np.save(aside, data.rating)
            data.rating = np.zeros(0, data.rating.dtype)
            inputs.rating = torch.from_numpy(data.rating)
            set_aside = True
        yield
    finally:
        if runs is not None:
            data.user = runs.numpy()
            inputs.user = torch.from_numpy(data.user)
        if aside is not None:
            if set_aside:  # a save that failed left it where it was
                aside.seek(0)
                data.rating = np.load(aside)
                inputs.rating = torch.from_numpy(data.rating)
            aside.close()
