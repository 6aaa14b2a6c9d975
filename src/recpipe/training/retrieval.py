"""``recpipe train`` (the default objective): a retrieval model, judged by ranking.

1. Split the interactions (``dataset.interaction_split``): cold-start customers held out
   whole, and of everyone else's interactions a validation and a test share.
2. Train the two towers — features plus id embeddings for the customers and products seen in
   training — with the in-batch softmax of ``objectives.Retrieval``, early stopping on the
   validation Recall@10. With events among the interactions (``training.events``), once per
   weighting of their kinds, keeping the best by that same validation Recall@10.
3. Evaluate on the test interactions and the cold-start customers against popularity, EASE,
   the seed's rating model trained on the same split, and the generator's oracle (these are
   fitted and ranked before step 2, while no model or customer vector is held beside them).
4. Refit (unless ``refit`` is off): a fresh model on every interaction for the epochs chosen
   in 2, so the published vectors know every customer and every purchase. The evaluation
   figures are those of step 2's model; the manifest says which data the published one saw.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from recpipe import ranking
from recpipe.progress import Progress
from recpipe.training import baselines, next_item
from recpipe.training.dataset import Ratings, Rows, every, interaction_split, row_type
from recpipe.training.evaluate import Holdouts
from recpipe.training.events import EVENT_WEIGHTS, KINDS
from recpipe.training.events import weights as event_weights
from recpipe.training.fit import fit, retrieval_batch_size
from recpipe.training.inputs import Prepared, Trained, prepare
from recpipe.training.memory import give_back
from recpipe.training.model import torch
from recpipe.training.objectives import Rating, Retrieval
from recpipe.training.runs import folded
from recpipe.training.sequences import Examples, Sequences
from recpipe.training.session import carry, fit_session

RATING_BASELINE_MAX = 500_000  # interactions: above, the rating baseline is off unless asked for
SESSION_EXAMPLES = 200_000  # the session encoder learns from at most this many (a seeded sample beyond)
SCORE = "cosine similarity of the L2-normalised embeddings (trained as softmax logits / temperature)"


def train_retrieval(data: Ratings, options: Any, progress: Progress) -> Trained:
    hp = options.hp
    seq = Sequences.of(data.user, data.order) if data.order is not None else None
    data.order = None  # the time order lives on in ``seq``
    latest = seq.last() if seq is not None else np.zeros(0, np.int64)  # each customer's latest interaction
    before = seq.last(back=2) if seq is not None else np.zeros(0, np.int64)  # and the one before it
    s = interaction_split(data, seed=hp.seed, validation=options.validation, test=options.test_share,
                          cold=options.cold_start, latest=latest, before_latest=before)
    if hp.batch_size is None:
        hp = replace(hp, batch_size=retrieval_batch_size(len(s.train)))
    n_users, n_items = len(data.users), len(data.items)
    h = Holdouts.of(data.user, data.item, n_users, n_items, s, hp.seed)
    counts, last_tested = s.describe(), latest[np.isin(latest, s.test)]  # the next-item targets
    # the test's and the cold customers' rows are in ``h`` now: not held through the epochs (10 MB at 10M)
    s = replace(s, test=np.zeros(0, s.test.dtype), cold=np.zeros(0, s.cold.dtype))  # not views: they hold the whole
    p = prepare(data, s.train)
    give_back()  # the split's and the sequences' temporaries (0.1 GB at 10M ratings)
    # the baselines before the model: EASE's products² matrix is not made beside every customer's
    # vector (83 MB at 650,000 customers)
    baseline_figures = _baselines(data, s, h, p, options, progress)
    give_back()  # what ranking them freed, kept by the C library, is not carried through the epochs
    with folded(data, p.inputs, rating=False):  # the customer per row as runs, the rating on disk: not read
        model, run, weight, weighting = _fit_weighted(data, p, s, h, hp, progress)

    progress.status("evaluating on the held-out interactions")
    customer_ids = data.users["customerNumber"].to_numpy()
    product_ids = np.array(data.items["productCode"].to_pylist())
    evaluated = Trained("retrieval", SCORE, model, p, True, [run], {}, counts, hp)
    towers = evaluated.towers(customer_ids, product_ids)
    # Cold-start customers were not in training: their ids have no embedding, features decide.
    users, items = towers.user(p.xu, customer_ids), towers.item(p.xi, product_ids)
    # evaluation reads the vectors: not the numpy towers' id table, nor, when a refit is published,
    # the evaluated model's (83 MB each at 650,000 customers)
    del towers
    if options.refit:
        evaluated.model = model = None
    mine = ranking.embeddings(users, items)
    metrics: dict[str, Any] = {"objective": "retrieval", **h.score(mine, mine)}
    metrics["baselines"] = baseline_figures
    session: dict[str, Any] = {"trained": False, "why": "the dataset has no time order (no orders in the source)"}
    if seq is not None:
        progress.status("training the session encoder on the validation interactions, in time order")
        known = np.concatenate([s.train, s.validation])
        known.sort()  # in the data's customer order: EASE's pairs need no sorting of their own
        checks = before[np.isin(before, s.validation)]  # the encoder is chosen on these, as serving meets them
        chosen_on = _sample(checks, next_item.MAX_EXAMPLES, hp.seed)  # a seeded sample: a fixed cost
        learned_from = _sample(np.setdiff1d(s.validation, checks), SESSION_EXAMPLES, hp.seed)
        learn, select = (Examples.of(seq, rows, data.user, data.item) for rows in (learned_from, chosen_on))
        # what the examples' customers had (left out of their rankings), not every customer's
        theirs = np.zeros(n_users, dtype=bool)
        theirs[learn.user] = theirs[select.user] = True
        had = known[theirs[data.user[known]]]
        del theirs
        fitted = fit_session(users, items, learn, temperature=hp.temperature, seed=hp.seed,
                             owned=(data.user[had], data.item[had]), select=select, progress=progress)
        del learn, select, had
        evaluated.session, session = fitted.encoder, fitted.report
        progress.status("evaluating the next item, for known customers and new visitors")
        lam = metrics["baselines"].get("ease", {}).get("lambda")
        truth, why = baselines.next_item_oracle(data)
        metrics["next_item"] = next_item.evaluate(
            data.user, data.item, n_users, n_items, known, seq,
            last_tested, seq.last(s.cold_users), users, items, fitted.encoder, lam, truth)
        if truth is None:
            metrics["next_item"]["oracle"] = {"skipped": why}
        del known, truth  # truth holds the generator's choice model, a row per customer
    else:
        metrics["next_item"] = {"skipped": session["why"]}
    metrics["protocol"] = {"test_share": options.test_share, "validation_share": options.validation,
                           "cold_start_share": options.cold_start, "k": ranking.K,
                           "relevant": "every held-out interaction",
                           "candidates": "every product the customer has not bought in training or validation",
                           "sample": h.sample}
    if weighting:
        metrics["event_weights"] = weighting
    evaluated.metrics = metrics
    best_epochs = run.best + 1
    if not options.refit:
        evaluated.extra = {"published": {"trained_on": "the training split", "epochs": best_epochs,
                                         "interactions": len(s.train)}, "session_encoder": session}
        return evaluated

    # The refit sees every interaction: a customer's latest purchases are what says most about
    # their next one (MovieLens 100K, bench/session.py: the stored vector's next-item Hit@10 went
    # from 0.075 to 0.089 once the refit kept each customer's latest). The session encoder is the
    # evaluated one, carried into the refit's basis.
    encoder = evaluated.session
    # the refit makes its own: not two shops' worth of tensors at once; the split and the time
    # order are done with (about 0.14 GB at 10M ratings)
    del evaluated, model, p, users, mine, seq, s
    give_back()
    progress.status(f"refitting on all {len(data):,} interactions for {best_epochs} epochs")
    rows = every(len(data))
    q = prepare(data, rows)
    torch.manual_seed(hp.seed)
    final = q.new_model(hp, ids=True, id_dim=hp.dim)
    none = np.zeros(0, row_type(len(data)))
    with folded(data, q.inputs, rating=False):
        refit = fit(final, _objective(q, rows, none, h.validation, hp, weight), rows, hp, phase="refit",
                    validate=False, epochs=best_epochs, progress=progress)
    published = Trained("retrieval", SCORE, final, q, True, [run], metrics, counts, hp,
                        {"published": {"trained_on": "every interaction (refit after the evaluation)",
                                       "epochs": best_epochs, "interactions": len(data),
                                       "seconds": round(refit.history[-1].seconds, 3) if refit.history else 0.0}})
    if encoder is not None:
        t = published.towers(customer_ids, product_ids)
        published.session, carried = carry(encoder, items, t.item(q.xi, product_ids))
        session = {**session, "published": carried}
    published.extra["session_encoder"] = session
    return published


def _objective(p: Prepared, train: Rows, validation: np.ndarray, holdout: ranking.Holdout,
               hp: Any, weight: np.ndarray | None = None) -> Retrieval:
    return Retrieval(p.inputs, train, validation, holdout, temperature=hp.temperature, logq=hp.logq,
                     id_dropout=hp.id_dropout, batch_size=hp.batch_size, id_weight_decay=hp.id_weight_decay,
                     weight=weight)


def _fit_weighted(data: Ratings, p: Prepared, s: Any, h: Holdouts, hp: Any, progress: Progress
                  ) -> tuple[Any, Any, np.ndarray | None, dict[str, Any]]:
    """The model, its run and its per-row weights. With events among the training rows, one
    model per setting of ``events.EVENT_WEIGHTS``, the best by validation Recall@10 kept (the
    validation rows are the same for each: their figures compare)."""
    has_events = data.kind is not None and bool((data.kind[s.train] >= 0).any())
    settings = EVENT_WEIGHTS if has_events else {"": None}
    best: tuple[Any, Any, np.ndarray | None, float, str] | None = None
    recalls: dict[str, float | None] = {}
    for name, per_kind in settings.items():
        weight = event_weights(data.kind, per_kind)
        torch.manual_seed(hp.seed)
        model = p.new_model(hp, ids=True, id_dim=hp.dim)
        phase = f"retrieval, events {name}" if name else "retrieval"
        run = fit(model, _objective(p, s.train, s.validation, h.validation, hp, weight), s.train, hp, phase=phase,
                  progress=progress)
        recall = run.history[run.best].val_recall if run.history else None
        recalls[name] = recall
        if best is None or (recall or 0.0) > best[3]:
            best = (model, run, weight, recall or 0.0, name)
    assert best is not None  # noqa: S101 (settings is never empty)
    if not has_events:
        return best[0], best[1], None, {}
    return best[0], best[1], best[2], {"chosen": best[4], "by": "validation Recall@10",
                                       "settings": {k: dict(zip(KINDS, v, strict=True)) for k, v in settings.items()
                                                    if v is not None},
                                       "validation_recall_at_10": recalls}


def _baselines(data: Ratings, s: Any, h: Holdouts, p: Prepared, options: Any, progress: Progress) -> dict[str, Any]:
    n_users, n_items = len(data.users), len(data.items)
    out: dict[str, Any] = {}
    popular = ranking.shared(ranking.popularity(data.item[s.train], n_items))
    out["popularity"] = h.score(popular, popular)
    if n_items <= baselines.EASE_MAX_ITEMS:
        progress.status("fitting the EASE baseline")
        make, chosen = baselines.ease(data.user, data.item, n_users, n_items, h.validation, s.train)
        out["ease"] = {**h.score(make(h.history_user, h.history_item)), **chosen}
        del make  # its B (products²) is not needed beside the oracle's
    else:
        out["ease"] = {"skipped": f"more than {baselines.EASE_MAX_ITEMS:,} products"}
    wanted = options.rating_baseline
    if wanted is None:
        wanted = len(data) <= RATING_BASELINE_MAX
    if wanted:
        out["rating_model"] = _rating_model(data, s, h, p, options.fit.resolved("rating"), progress)
    else:
        out["rating_model"] = {"skipped": "off (`recpipe train --rating-baseline` turns it on)" if
                               options.rating_baseline is False else
                               f"more than {RATING_BASELINE_MAX:,} interactions (`--rating-baseline` turns it on)"}
    scorer, why = baselines.oracle(data)
    out["oracle"] = h.score(scorer, scorer) if scorer is not None else {"skipped": why}
    return out


def _rating_model(data: Ratings, s: Any, h: Holdouts, p: Prepared, hp: Any, progress: Progress) -> dict[str, Any]:
    """The seed's objective (content towers, rating regression) on the same training split."""
    torch.manual_seed(hp.seed)
    model = p.new_model(hp, ids=False, id_dim=hp.id_dim)
    fit(model, Rating(p.inputs, s.validation), s.train, hp, phase="rating baseline",
        progress=progress)
    towers = model.to_numpy()
    scorer = ranking.embeddings(towers.user(p.xu), towers.item(p.xi))
    return h.score(scorer, scorer)


def _sample(rows: np.ndarray, at_most: int, seed: int) -> np.ndarray:
    """``rows``, or a seeded sample of ``at_most`` of them (sorted)."""
    if len(rows) <= at_most:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, at_most, replace=False))
