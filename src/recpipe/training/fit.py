"""The training loop: seeded mini-batches, Adam, early stopping on a validation criterion.

Inputs are prepared once (encoded features per user and per item, and index arrays per
interaction), so a batch is a few gathers. What a batch costs and what "better"
means come from the objective (``objectives.py``); the loop keeps the weights of the best
validation epoch (on disk, ``Checkpoint``) and restores them at the end. Without validation
(a refit on everything) it runs a fixed number of epochs and keeps the last.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from recpipe.errors import InternalError
from recpipe.inference.features import Encoded
from recpipe.progress import SILENT, Progress
from recpipe.training.dataset import Rows, count
from recpipe.training.memory import give_back
from recpipe.training.model import TwoTower, torch
from recpipe.training.optimizer import TowerOptimizer
from recpipe.training.shuffle import Shuffled

# Chosen on the medium synthetic shop (bench/train.py): the retrieval model overfits its id
# embeddings within a few epochs at the rating objective's step size.
# Retrieval's batch size follows the data (``retrieval_batch_size``): a small shop needs more
# steps per epoch than one big batch gives it.
# Retrieval's criterion is the validation Recall@10 of at most 10,000 customers, whose standard
# error is about 0.003: a gain below 0.001 is noise. At 10M ratings (bench/scale.py) epochs 3 to 5
# reached 0.2144, 0.2148, 0.2150: counting those gains kept it training, and refitting, two epochs
# longer for 0.0006.
OBJECTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "retrieval": {"learning_rate": 1e-3, "min_delta": 1e-3},
    "rating": {"learning_rate": 3e-3, "batch_size": 1024, "min_delta": 1e-5},
}


def retrieval_batch_size(interactions: int) -> int:
    """About 64 steps per epoch, between 256 and 2048 interactions per batch."""
    return int(min(2048, max(256, interactions // 64)))


@dataclass(frozen=True)
class FitOptions:
    dim: int = 32
    hidden: tuple[int, ...] = (64,)
    batch_size: int | None = None  # None: the objective's default (OBJECTIVE_DEFAULTS)
    learning_rate: float | None = None
    max_epochs: int = 40
    patience: int = 3  # epochs without improvement before stopping
    min_delta: float | None = None  # smaller improvements of the validation criterion do not count
    id_dim: int = 1  # free values per id embedding (rating objective, hybrid); retrieval uses dim
    id_l2: float = 1e-3  # L2 on the id embeddings of each batch (rating objective, hybrid)
    temperature: float = 0.2  # retrieval: softmax over cosine / temperature
    logq: bool = True  # retrieval: sampling-bias correction of the in-batch softmax
    id_dropout: float = 0.2  # retrieval: share of a batch trained without id embeddings (cold start)
    # retrieval: AdamW weight decay of the id embeddings. bench/train.py: 1 ranks as well as 0.3
    # and better than 3 or 10 on every shop (10 cost the 1M-rating shop 10% of its Recall@10).
    id_weight_decay: float = 1.0
    seed: int = 42

    def resolved(self, objective: str) -> FitOptions:
        """These options with the objective's defaults where none was given."""
        fill = {k: v for k, v in OBJECTIVE_DEFAULTS[objective].items() if getattr(self, k) is None}
        return replace(self, **fill)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class Inputs:
    """Everything the loop reads: the encoded features of every user and item (compact, made
    dense for the rows of a batch: ``user_x``/``item_x``) and, as tensors, index arrays.
    ``uid``/``iid`` map a user/item row to its id embedding row (the padding row when the id
    was not seen in training)."""

    xu: Encoded
    xi: Encoded
    user: torch.Tensor  # per interaction: user row (during a fit, maybe ``runs.UserRuns``: indexed alike)
    item: torch.Tensor  # per interaction: item row
    rating: torch.Tensor  # per interaction: 1..5, int8 (rating_to_target makes the float target)
    uid: torch.Tensor
    iid: torch.Tensor

    @classmethod
    def build(cls, xu: Encoded, xi: Encoded, user: np.ndarray, item: np.ndarray, rating: np.ndarray,
              uid: np.ndarray, iid: np.ndarray) -> Inputs:
        t = torch.from_numpy
        return cls(xu, xi, t(user), t(item), t(np.asarray(rating)), t(uid), t(iid))

    def user_x(self, rows: torch.Tensor) -> torch.Tensor:
        """The tower inputs of these user rows."""
        return torch.from_numpy(self.xu[rows.numpy()])

    def item_x(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The tower inputs of these item rows (None: every item)."""
        return torch.from_numpy(self.xi[slice(None) if rows is None else rows.numpy()])


@dataclass
class Epoch:
    phase: str
    epoch: int
    train_loss: float  # the objective's loss (rating: MSE on the [-1, 1] scale; retrieval: softmax CE)
    val_loss: float | None  # the same loss on the validation interactions
    seconds: float  # since the phase started, at the end of this epoch
    val_recall: float | None = None  # retrieval: Recall@10 of the validation interactions

    def describe(self) -> str:
        """One line: loss and Recall@10 for retrieval, RMSE for the rating objective."""
        head = f"{self.phase} epoch {self.epoch:>2}: "
        if self.val_recall is not None and self.val_loss is not None:
            return head + (f"train loss {self.train_loss:.4f}, validation loss {self.val_loss:.4f}, "
                           f"validation Recall@10 {self.val_recall:.4f} ({self.seconds:.1f} s)")
        if self.val_loss is None:
            return head + f"train loss {self.train_loss:.4f} ({self.seconds:.1f} s)"
        return head + (f"train RMSE {2 * self.train_loss ** 0.5:.4f}, validation RMSE "
                       f"{2 * self.val_loss ** 0.5:.4f} ({self.seconds:.1f} s)")


class Objective(Protocol):
    id_weight_decay: float  # AdamW weight decay of the id-embedding tables

    def loss(self, model: TwoTower, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def validate(self, model: TwoTower) -> tuple[float, float, float | None]:
        """(criterion to minimise, validation loss, validation Recall@10 or None)."""
        ...


@dataclass
class FitResult:
    history: list[Epoch] = field(default_factory=list)
    best: int = -1  # index into history
    samples: int = 0  # training samples processed
    train_seconds: float = 0.0  # inside the batches only

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds else 0.0


def fit(model: TwoTower, objective: Objective, train: Rows, options: FitOptions, *,
        phase: str, validate: bool = True, epochs: int | None = None,
        progress: Progress = SILENT) -> FitResult:
    """Train ``model`` in place on interaction rows ``train`` (``dataset.every(n)``: all); with
    ``validate``, stop when the validation criterion stops improving and restore the best epoch,
    else run ``epochs``. An array of rows (sorted) is shuffled in place for each epoch, not
    permuted beside itself (30 MB at 10M ratings), and sorted again when done; every row is
    taken in a ``Shuffled`` order, made a batch at a time."""
    batch_size, learning_rate, min_delta = options.batch_size, options.learning_rate, options.min_delta
    if batch_size is None or learning_rate is None or min_delta is None:
        raise InternalError("fit() was given options whose objective defaults are not filled in",
                            hint="pass options.resolved(objective) (a bug in recpipe otherwise)")
    generator = torch.Generator().manual_seed(options.seed)
    # Adam gives a rarely seen id as large a step as a frequent one, so id vectors learn the
    # noise of a few purchases; decoupled weight decay on them (AdamW) holds them back.
    optimizer = TowerOptimizer(model, learning_rate, objective.id_weight_decay)
    n = count(train)
    shuffle = np.random.default_rng(options.seed)
    result = FitResult()
    best_value, best, stale = float("inf"), Checkpoint(), 0
    started = time.perf_counter()
    last = epochs or options.max_epochs
    for epoch in range(1, last + 1):
        progress.status(f"training the {phase} model: epoch {epoch} of {'' if epochs else 'at most '}{last}")
        progress.start(phase, n)
        model.train()
        total, t0 = 0.0, time.perf_counter()
        for rows in _batches(train, n, batch_size, shuffle):
            loss = objective.loss(model, rows, generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            progress.advance(phase, len(rows))
        result.samples += n
        optimizer.settle()
        result.train_seconds += time.perf_counter() - t0
        criterion, val_loss, val_recall = objective.validate(model) if validate else (0.0, None, None)
        give_back()  # the epoch's batches and ranking blocks, freed but kept by the C library
        result.history.append(Epoch(phase, epoch, total / n, val_loss, time.perf_counter() - started,
                                    val_recall))
        progress.note(result.history[-1].describe())
        if not validate:
            result.best = len(result.history) - 1
        elif criterion < best_value - min_delta:
            best_value, stale = criterion, 0
            best.save(model)
            result.best = len(result.history) - 1
        else:
            stale += 1
            if stale >= options.patience:
                break
    del optimizer  # its moments (as large as the id tables) are not needed to restore the best epoch
    if isinstance(train, np.ndarray):
        train.sort()  # the caller's rows as they were (in customer order: EASE reads them where they lie)
    best.restore(model)
    return result


def _batches(train: Rows, n: int, batch_size: int, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """One epoch's batches: an array of rows shuffled in place, or every row in a ``Shuffled``
    order made a batch at a time (no permutation of them: 43 MB at 10M ratings)."""
    if isinstance(train, np.ndarray):
        rng.shuffle(train)
        order = torch.from_numpy(train)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]
        return
    every = Shuffled(n, rng)
    for start in range(0, n, batch_size):
        yield torch.from_numpy(every.rows(start, start + batch_size))


class Checkpoint:
    """The best epoch's weights, kept in a temporary file rather than as a second copy in
    memory: at 650,000 customers the id table alone is 83 MB, a copy held for the whole fit."""

    def __init__(self) -> None:
        self.file: Any = None

    def save(self, model: TwoTower) -> None:
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="recpipe-best-")  # noqa: SIM115 (open across epochs)
        self.file.seek(0)
        self.file.truncate()
        torch.save(model.state_dict(), self.file)

    def restore(self, model: TwoTower) -> None:
        """Load the saved weights into ``model`` (none saved: leave it as it is) and drop the file."""
        if self.file is None:
            return
        self.file.seek(0)
        model.load_state_dict(torch.load(self.file, weights_only=True))
        self.file.close()
        self.file = None
