"""A seeded random order of every training row, made a batch at a time (``Shuffled``).

An epoch over every interaction (the refit) needs the rows in a fresh random order. A
permutation of them is an array as long as the data (43 MB of int32 at 10M ratings), held for
the whole epoch. ``Shuffled`` is a permutation that holds nothing: position ``p`` of the order
is a keyed bijection of ``p`` — a Feistel network on the bits of the positions (Luby and
Rackoff: a few rounds of a keyed mixing function make a pseudo-random permutation), walked
again while it lands past the last row ("cycle walking", which keeps it a bijection of
``0 .. n-1``). Each epoch draws new keys from the loop's seeded generator, so runs repeat.
"""

from __future__ import annotations

import numpy as np

ROUNDS = 6
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's constants: a cheap, well-mixed hash
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class Shuffled:
    """A random order of ``range(n)``, read ``rows(start, stop)`` at a time."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        bits = max(2, (n - 1).bit_length())
        self.half = np.uint64((bits + 1) // 2)  # two halves of equal width: a domain below 4n
        self.mask = np.uint64((1 << int(self.half)) - 1)
        self.keys = rng.integers(0, 2**63, ROUNDS, dtype=np.uint64)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The rows at positions ``start .. stop-1`` of the order (int64)."""
        out = self._permute(np.arange(start, min(stop, self.n), dtype=np.uint64))
        away = np.flatnonzero(out >= self.n)
        while len(away):  # past the last row: permute again until it is one (a bijection still)
            out[away] = self._permute(out[away])
            away = away[out[away] >= self.n]
        return out.astype(np.int64)

    def _permute(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self.half, x & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right ^ key) & self.mask)
        return (left << self.half) | right


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (wrapping uint64 arithmetic)."""
    z = z * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))
