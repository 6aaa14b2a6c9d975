import itertools
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe import ranking
from recpipe.contracts.source import TABLE_ORDER, table
from recpipe.errors import InputError
from recpipe.source import choices
from recpipe.source.generate import (
    PRESETS,
    ShopSpec,
    _floor,
    best_prediction,
    choice_truth,
    generate_shop,
    spec_for,
)


@pytest.fixture(scope="module")
def shop():
    return generate_shop(ShopSpec(customers=600, products=120, seed=7))


def test_tables_have_the_schema_columns_in_order(shop) -> None:
    assert list(shop.tables) == list(TABLE_ORDER)
    for name, data in shop.tables.items():
        assert data.column_names == [c.name for c in table(name).columns], name


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = generate_shop(ShopSpec(customers=300, products=50, seed=11))
    b = generate_shop(ShopSpec(customers=300, products=50, seed=11))
    c = generate_shop(ShopSpec(customers=300, products=50, seed=12))
    for name in TABLE_ORDER:
        assert a.tables[name].equals(b.tables[name]), name
    assert not a.tables["ratings"].equals(c.tables["ratings"])
    assert a.params == b.params


def test_one_rating_per_distinct_purchased_pair(shop) -> None:
    orders = shop.tables["orders"].select(["orderNumber", "customerNumber"])
    lines = shop.tables["orderdetails"].join(orders, "orderNumber")
    bought = {(c, p) for c, p in zip(lines["customerNumber"].to_pylist(),
                                     lines["productCode"].to_pylist(), strict=True)}
    ratings = shop.tables["ratings"]
    rated = list(zip(ratings["customerNumber"].to_pylist(), ratings["productCode"].to_pylist(),
                     strict=True))
    assert len(rated) == len(set(rated))
    assert set(rated) == bought
    values = ratings["productRating"].to_numpy()
    assert values.min() >= 1 and values.max() <= 5
    assert len(np.unique(values)) == 5


def test_keys_are_unique_and_references_resolve(shop) -> None:
    t = shop.tables
    for name in TABLE_ORDER:
        pk = [c.name for c in table(name).primary_key.columns]
        keys = t[name].group_by(pk).aggregate([]).num_rows
        assert keys == t[name].num_rows, f"duplicate primary keys in {name}"
    def subset(child, col, parent, pcol):
        values = pc.drop_null(t[child][col])
        return pc.all(pc.is_in(values, t[parent][pcol])).as_py()
    assert subset("products", "productLine", "productlines", "productLine")
    assert subset("employees", "officeCode", "offices", "officeCode")
    assert subset("employees", "reportsTo", "employees", "employeeNumber")
    assert subset("customers", "salesRepEmployeeNumber", "employees", "employeeNumber")
    assert subset("orders", "customerNumber", "customers", "customerNumber")
    assert subset("orderdetails", "orderNumber", "orders", "orderNumber")
    assert subset("orderdetails", "productCode", "products", "productCode")
    assert subset("payments", "customerNumber", "customers", "customerNumber")
    assert subset("ratings", "customerNumber", "customers", "customerNumber")
    assert subset("ratings", "productCode", "products", "productCode")


def test_realistic_gaps_and_text(shop) -> None:
    c, p = shop.tables["customers"], shop.tables["products"]
    ordered_customers = set(shop.tables["orders"]["customerNumber"].to_pylist())
    assert len(ordered_customers) < c.num_rows, "some customers never order"
    assert len(set(shop.tables["orderdetails"]["productCode"].to_pylist())) < p.num_rows
    assert c["state"].null_count > 0 and c["postalCode"].null_count > 0
    assert c["creditLimit"].null_count > 0
    assert any(not city.isascii() for city in c["city"].to_pylist())
    assert set(p["productLine"].to_pylist()) <= {
        "Classic Cars", "Motorcycles", "Planes", "Ships", "Trains", "Trucks and Buses", "Vintage Cars"}
    assert max(len(code) for code in p["productCode"].to_pylist()) <= 15
    assert pc.max(p["quantityInStock"]).as_py() <= 32767


def test_floors_are_ordered_and_in_a_sane_range(shop) -> None:
    floors = shop.params["rmse_floor"]
    assert 0 < floors["identity"] < floors["features"] < 1.5
    assert floors["ratings"] == shop.tables["ratings"].num_rows


def test_floor_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    mean = rng.uniform(0.5, 5.5, 4000)
    sd = 0.7
    draws = np.clip(np.rint(mean[:, None] + rng.normal(0, sd, (4000, 400))), 1, 5)
    best = draws.mean(axis=1, keepdims=True)  # E[r | m] estimated
    empirical = math.sqrt(((draws - best) ** 2).mean())
    assert _floor(mean, sd) == pytest.approx(empirical, rel=0.01)


@pytest.mark.parametrize("knows", ["features", "identity"])
def test_an_oracle_reaches_each_floor_and_nothing_beats_it(knows: str) -> None:
    """Predicting E[r | planted mean] scores the floor; shrinking toward the global mean is worse."""
    shop = generate_shop(ShopSpec(customers=4000, products=150, seed=3))
    r = shop.tables["ratings"]["productRating"].to_numpy().astype(float)
    mean, sd = shop.truth[knows], float(shop.truth[f"{knows}_sd"][0])
    oracle, _ = best_prediction(mean, sd)
    rmse = math.sqrt(((r - oracle) ** 2).mean())
    assert rmse == pytest.approx(shop.params["rmse_floor"][knows], rel=0.03)
    global_mean = math.sqrt(((r - r.mean()) ** 2).mean())
    assert rmse < global_mean
    for blur in (0.5, 1.5):  # a mis-scaled version of the signal is worse than the oracle
        worse, _ = best_prediction(r.mean() + blur * (mean - mean.mean()), sd)
        assert math.sqrt(((r - worse) ** 2).mean()) > rmse


@settings(max_examples=15, deadline=None)
@given(customers=st.integers(1, 300), products=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_any_small_shop_keeps_its_invariants(customers: int, products: int, seed: int) -> None:
    shop = generate_shop(ShopSpec(customers=customers, products=products, seed=seed))
    t = shop.tables
    assert t["customers"].num_rows == customers and t["products"].num_rows == products
    ratings = t["ratings"]
    pairs = set(zip(ratings["customerNumber"].to_pylist(), ratings["productCode"].to_pylist(),
                    strict=True))
    assert len(pairs) == ratings.num_rows
    if ratings.num_rows:
        assert pc.min(ratings["productRating"]).as_py() >= 1
        assert pc.max(ratings["productRating"]).as_py() <= 5
    lines = t["orderdetails"]
    assert lines.group_by(["orderNumber", "productCode"]).aggregate([]).num_rows == lines.num_rows
    assert t["orders"]["orderDate"].type == pa.date32()


@pytest.mark.parametrize("kwargs", [{"customers": -1}, {"products": 0}, {"seed": -3}])
def test_bad_sizes_are_rejected_with_the_option_named(kwargs) -> None:
    with pytest.raises(InputError) as err:
        spec_for("small", **kwargs).check()
    assert "--" + next(iter(kwargs)) in str(err.value)


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="unknown scale preset 'huge'"):
        spec_for("huge")
    assert PRESETS["small"].customers < PRESETS["medium"].customers < PRESETS["large"].customers


def _tiny_choice_model(user: list[list[float]], item: list[list[float]], sellable: list[bool]) -> choices.ChoiceModel:
    return choices.ChoiceModel(np.array(user, float), np.array(item, float), np.array(sellable), 1.0)


def test_draws_follow_the_softmax_of_the_choice_logits() -> None:
    """One product each for 40,000 identical customers: frequencies = softmax(logits)."""
    item = [[1.0, 0.0], [0.0, 0.5], [0.5, 0.5], [-1.0, 0.0], [3.0, 0.0]]
    model = _tiny_choice_model([[1.0, 1.0]] * 40_000, item, [True, True, True, True, False])
    users, items = choices.draw(model, np.random.default_rng(1), np.ones(40_000, dtype=np.int64))
    assert np.array_equal(users, np.arange(40_000))
    logits = np.array([1.0, 0.5, 1.0, -1.0])
    expected = np.exp(logits) / np.exp(logits).sum()
    got = np.bincount(items, minlength=5) / len(items)
    assert got[4] == 0  # an unsold product is never drawn, however attractive
    assert np.abs(got[:4] - expected).max() < 0.01


def test_draws_are_distinct_per_customer_and_capped_by_what_can_be_sold() -> None:
    model = _tiny_choice_model([[1.0, 1.0], [0.0, 1.0], [2.0, 1.0]], [[0.1 * k, 0.0] for k in range(6)],
                               [True] * 5 + [False])
    users, items = choices.draw(model, np.random.default_rng(0), np.array([3, 0, 9]))
    assert users.tolist() == [0, 0, 0, 2, 2, 2, 2, 2]
    assert len(set(items[:3].tolist())) == 3 and sorted(items[3:].tolist()) == [0, 1, 2, 3, 4]


def test_the_oracle_is_recorded_and_made_again_from_the_spec_alone(shop) -> None:
    """The sidecar's oracle figures; choice_truth() rebuilds the very same choice model, and
    the oracle ranks the held-out purchases far better than popularity."""
    oracle = shop.params["ranking_oracle"]
    assert 0 < oracle["recall_at_10"] <= 1 and oracle["users"] > 0
    numbers, codes, model = choice_truth(ShopSpec(customers=600, products=120, seed=7))
    assert numbers.tolist() == shop.tables["customers"]["customerNumber"].to_pylist()
    assert codes == shop.tables["products"]["productCode"].to_pylist()
    user, item = shop.truth["customer_row"], shop.truth["product_row"]
    again = choices.oracle_figures(model, user, item, np.random.default_rng(5))
    test = ranking.customer_quantiles(user, np.random.default_rng(5)) < choices.HOLDOUT
    h = ranking.Holdout(len(model.user), len(model.item), user[~test], item[~test], user[test], item[test])
    popular = ranking.evaluate(ranking.shared(ranking.popularity(item[~test], len(model.item))), h)
    assert again["users"] == popular["users"] > 0
    assert again["recall_at_10"] > 1.3 * popular["recall_at_10"]
    unsold = ~model.sellable
    assert unsold.any() and not np.isin(np.flatnonzero(unsold), item).any()  # nobody buys them


def test_product_names_belong_to_their_line() -> None:
    """A plane is named like a plane: the make and kind come from the product's own line."""
    from recpipe.source import catalog
    from recpipe.source.generate import ShopSpec, generate_shop

    products = generate_shop(ShopSpec(customers=50, products=300, seed=3)).tables["products"].to_pylist()
    for p in products:
        makes, kinds = catalog.NAMES_BY_LINE[p["productLine"]]
        rest = p["productName"].split(" ", 1)[1]
        assert any(rest.startswith(m + " ") for m in makes) and any(rest.endswith(" " + k) for k in kinds), p


def test_a_customers_purchases_follow_the_walk_and_the_next_item_oracle_is_recorded() -> None:
    """Consecutive purchases (by order date, then line) share a product line far more often
    than two of the customer's purchases at random; the sidecar carries the next-item oracle."""
    import pyarrow.compute as pc

    from recpipe.source.generate import PRESETS, generate_shop

    shop = generate_shop(PRESETS["tiny"])
    lines = dict(zip(shop.tables["products"]["productCode"].to_pylist(),
                     shop.tables["products"]["productLine"].to_pylist(), strict=True))
    orders = shop.tables["orders"].select(["orderNumber", "orderDate", "customerNumber"])
    rows = shop.tables["orderdetails"].join(orders, "orderNumber").sort_by(
        [("customerNumber", "ascending"), ("orderDate", "ascending"), ("orderNumber", "ascending"),
         ("orderLineNumber", "ascending")]).to_pylist()
    same = pairs = 0
    by_customer: dict[int, list[str]] = {}
    for r in rows:
        by_customer.setdefault(r["customerNumber"], []).append(lines[r["productCode"]])
    rng = np.random.default_rng(0)
    chance = hits = 0
    for seq in by_customer.values():
        for a, b in itertools.pairwise(seq):
            pairs += 1
            same += a == b
            x, y = rng.choice(len(seq), 2, replace=False)
            chance += 1
            hits += seq[x] == seq[y]
    assert pairs > 500 and same / pairs > 1.3 * hits / chance
    oracle = shop.params["next_item_oracle"]
    assert 0 < oracle["hit_at_10"] <= 1 and oracle["customers"] > 100
    assert pc.min(shop.tables["orderdetails"]["orderLineNumber"]).as_py() == 1


def test_one_shoppers_next_click_weights_are_the_batch_weights() -> None:
    """``Transitions.after`` (the producer's per-click form) equals ``bonus`` for every product."""
    from recpipe.source.sequences import transitions

    rng = np.random.default_rng(5)
    line = rng.integers(0, 6, 40)
    t = transitions(line, rng.random(40) < 0.9, rng)
    for previous in range(40):
        assert np.array_equal(t.after(previous), t.bonus(np.array([previous]))[0])
