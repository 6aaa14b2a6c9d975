"""Synthetic shops: the classicmodels tables plus ratings with planted, known structure.

Pure code: a :class:`ShopSpec` and a seed go in, Arrow tables and the generator's parameters
come out. The same spec and seed give the same rows on every machine and every database.

How a rating is made (tables: ``recpipe.contracts.source``). For customer ``u`` and product ``i``::

    z = mu + alpha * <user_vec(city, country, creditLimit), item_vec(productLine, productScale, MSRP)>
          + b_u + b_i + eps,        b_u ~ N(0, su²), b_i ~ N(0, si²), eps ~ N(0, sigma²)
    productRating = clip(round(z), 1, 5)

Which products a customer buys follows a known choice model over the same latent features
plus a personal taste and each product's popularity (``choices.py``); the generator records
its oracle's ranking figures. Two RMSE floors are computed from the rating model, in closed
form per rating:

* ``features``: the best a model that sees the features can do. It knows ``mu + alpha <.,.>``
  and also ``b_i``: a product's stock and prices are nearly unique, so its features identify
  it and a model can learn its effect. It cannot know ``b_u`` (a customer's city and credit
  limit are shared with others) or ``eps``;
* ``identity``: the best a model that also knows who the customer is can do. Only ``eps``
  remains.

For a known mean ``m`` and remaining noise ``s``, the best prediction of the rounded,
clipped rating is ``E[r | m]`` and its expected squared error is ``Var[r | m]``; the floor is
``sqrt(mean(Var[r | m]))`` over all ratings. Which pairs are rated depends on the latent
features and tastes but not on ``b_u``, ``b_i`` or ``eps``, so the floors are exact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recpipe.contracts.source import TABLE_ORDER
from recpipe.errors import InputError, InternalError
from recpipe.source import catalog, choices, sequences

EPOCH_2003 = 12053  # 2003-01-01 as days since 1970-01-01
ORDER_SPAN_DAYS = 880  # to mid-2005, like the sample


@dataclass(frozen=True)
class ShopSpec:
    """The size and shape of a synthetic shop. Every field has a sensible default."""

    customers: int = 2_000
    products: int = 200
    seed: int = 42
    orders_per_customer: float = 3.0  # mean, for customers who order at all
    lines_per_order: float = 6.0  # mean order lines
    inactive_fraction: float = 0.08  # customers without any order
    unsold_fraction: float = 0.05  # products nobody has ordered yet
    latent_dim: int = 4
    mu: float = 3.4
    signal_sd: float = 0.8  # sd of the feature-driven part alpha <u, v>
    user_effect_sd: float = 0.35
    item_effect_sd: float = 0.3
    noise_sd: float = 0.5
    # What is bought (choices.py): popularity ~ 1 / rank^popularity_exponent, a personal part
    # of choice_signal_sd nats from the latent features plus a taste of each customer's own.
    popularity_exponent: float = 0.8
    choice_signal_sd: float = 2.0
    taste_sd: float = 0.8
    item_taste_sd: float = 0.5

    def check(self) -> None:
        problems = []
        if self.customers < 1:
            problems.append(f"--customers must be at least 1 (got {self.customers})")
        if self.products < 1:
            problems.append(f"--products must be at least 1 (got {self.products})")
        if self.seed < 0:
            problems.append(f"--seed must be 0 or more (got {self.seed})")
        if self.orders_per_customer < 1 or self.lines_per_order < 1:
            problems.append("orders per customer and lines per order must be at least 1")
        if not 0 <= self.inactive_fraction < 1 or not 0 <= self.unsold_fraction < 1:
            problems.append("inactive and unsold fractions must be in [0, 1)")
        if min(self.signal_sd, self.user_effect_sd, self.item_effect_sd, self.noise_sd, self.choice_signal_sd,
               self.taste_sd, self.item_taste_sd, self.popularity_exponent) < 0:
            problems.append("standard deviations and the popularity exponent must not be negative")
        if self.customers > 50_000_000 or self.products > 1_000_000:
            problems.append("at most 50,000,000 customers and 1,000,000 products")
        if problems:
            raise InputError("invalid shop size: " + "; ".join(problems),
                             hint="see `recpipe source init --help`")


PRESETS: dict[str, ShopSpec] = {
    "tiny": ShopSpec(customers=200, products=60),
    "small": ShopSpec(customers=2_000, products=200),
    "medium": ShopSpec(customers=20_000, products=1_000),
    "large": ShopSpec(customers=65_000, products=2_000),  # about 1,000,000 ratings
}


@dataclass
class Shop:
    """A generated shop: Arrow tables in parent-to-child order, and the generator's record."""

    tables: dict[str, pa.Table]
    params: dict[str, Any]
    # The planted means per rating row (not stored anywhere): what an oracle that sees only
    # features ("features") or also identities ("identity") knows. For tests and benchmarks.
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, int]:
        return {name: t.num_rows for name, t in self.tables.items()}


def generate_shop(spec: ShopSpec) -> Shop:
    spec.check()
    rng = _streams(spec)
    productlines = _productlines()
    products, prod = _products(spec, rng["products"])
    offices, employees, reps = _staff()
    customers, cust = _customers(spec, rng["customers"], reps)
    model = _latent_model(spec, rng["latent"], cust, prod)
    choice = _choice_model(spec, rng, model, prod)
    orders, order_cust = _orders(spec, rng["orders"], cust)
    orderdetails, line_order, line_prod, line_total, walked = _orderdetails(
        spec, rng["lines"], rng["choices"], rng["sequence"], products, prod, order_cust, choice)
    payments = _payments(rng["payments"], orders, order_cust, cust, line_order, line_total)
    ratings, floors, truth = _ratings(spec, rng["ratings"], products, cust, model,
                                      order_cust[line_order], line_prod)
    oracle = choices.oracle_figures(choice, truth["customer_row"], truth["product_row"], rng["oracle"])
    next_oracle = sequences.oracle_figures(choice, *walked, rng["oracle"])

    tables = {
        "productlines": productlines, "products": products, "offices": offices,
        "employees": employees, "customers": customers, "orders": orders,
        "orderdetails": orderdetails, "payments": payments, "ratings": ratings,
    }
    if tuple(tables) != TABLE_ORDER:
        raise InternalError(f"generated tables {tuple(tables)} are not in the order {TABLE_ORDER}")
    params = {
        "generator": "recpipe.source.generate",
        "spec": asdict(spec),
        "rmse_floor": floors,
        "ranking_oracle": oracle,
        "next_item_oracle": next_oracle,
        "alpha": model.alpha,
        "choice_beta": choice.beta,
        "effects": {
            "country": {k: v.round(6).tolist() for k, v in model.country.items()},
            "city": {k: v.round(6).tolist() for k, v in model.city.items()},
            "credit_limit_weight": model.w_credit.round(6).tolist(),
            "credit_limit_standardisation": model.credit_std,
            "product_line": {k: v.round(6).tolist() for k, v in model.line.items()},
            "product_scale": {k: v.round(6).tolist() for k, v in model.scale.items()},
            "msrp_weight": model.w_msrp.round(6).tolist(),
            "msrp_standardisation": model.msrp_std,
        },
        "counts": {name: t.num_rows for name, t in tables.items()},
    }
    return Shop(tables=tables, params=params, truth=truth)


STREAMS = ("products", "staff", "customers", "latent", "orders", "lines", "ratings", "payments", "taste",
           "choices", "oracle", "sequence")  # a stream added last leaves every other stream as it was


def _streams(spec: ShopSpec) -> dict[str, np.random.Generator]:
    """One independent random stream per part, so each part can be made again on its own."""
    seeds = np.random.SeedSequence(spec.seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}


def _choice_model(spec: ShopSpec, rng: dict[str, np.random.Generator], model: LatentModel,
                  prod: dict[str, np.ndarray]) -> choices.ChoiceModel:
    """The choice model; its popularity weights are the first draws of the "lines" stream, the
    products' follow-ups the first of the "sequence" stream."""
    n = spec.products
    popularity = rng["lines"].permutation(1.0 / np.arange(1, n + 1) ** spec.popularity_exponent)
    unsold = rng["lines"].random(n) < spec.unsold_fraction
    if unsold.all():
        unsold[0] = False
    popularity[unsold] = 0.0
    choice = choices.choice_model(spec, rng["taste"], model.user, model.item, popularity / popularity.sum())
    return replace(choice, sequence=sequences.transitions(prod["line"], choice.sellable, rng["sequence"]))


def choice_truth(spec: ShopSpec) -> tuple[np.ndarray, list[str], choices.ChoiceModel]:
    """The shop's choice model made again from its spec (no orders or ratings): customer
    numbers, product codes, and the model whose ``logits`` the oracle ranks by."""
    spec.check()
    rng = _streams(spec)
    products, prod = _products(spec, rng["products"])
    cust = _customer_facts(spec, rng["customers"])
    model = _latent_model(spec, rng["latent"], cust, prod)
    return cust["number"], products["productCode"].to_pylist(), _choice_model(spec, rng, model, prod)


def recorded_choice_model(generator: dict[str, Any] | None
                          ) -> tuple[np.ndarray, list[str], choices.ChoiceModel] | None:
    """The choice model of the shop a sidecar or a dataset manifest describes (``choice_truth``
    of its recorded spec), or None when recpipe's generator did not make it. The one way other
    stages read a synthetic shop's truth; a spec that cannot be read is an InputError."""
    if not generator or generator.get("generator") != "recpipe.source.generate" or not generator.get("spec"):
        return None
    try:
        return choice_truth(ShopSpec(**generator["spec"]))
    except (TypeError, ValueError) as exc:
        raise InputError(f"the generator's recorded spec cannot be read: {exc}",
                         hint="make the shop again with `recpipe source init`") from exc


def spec_for(preset: str | None, **overrides: Any) -> ShopSpec:
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown scale preset {preset!r}",
                         hint=f"use one of: {', '.join(PRESETS)}")
    base = PRESETS[preset or "small"]
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


# --- tables -----------------------------------------------------------------------------------

def _productlines() -> pa.Table:
    names = [n for n, _ in catalog.PRODUCT_LINES]
    return pa.table({
        "productLine": names,
        "textDescription": [d for _, d in catalog.PRODUCT_LINES],
        "htmlDescription": pa.nulls(len(names), pa.string()),
        "image": pa.nulls(len(names), pa.binary()),
    })


def _products(spec: ShopSpec, rng: np.random.Generator) -> tuple[pa.Table, dict[str, np.ndarray]]:
    n = spec.products
    line = rng.integers(0, len(catalog.PRODUCT_LINES), n)
    scale = rng.integers(0, len(catalog.SCALES), n)
    scale_num = np.array([int(s.split(":")[1]) for s in catalog.SCALES])[scale]
    code = pc.binary_join_element_wise(
        _strs("S", n), pa.array(scale_num).cast(pa.string()), _strs("_", n),
        pa.array(np.arange(1000, 1000 + n)).cast(pa.string()), "")
    year = rng.integers(1900, 2006, n)
    makes, kinds = rng.integers(0, catalog.MAKE_DRAWS, n), rng.integers(0, catalog.KIND_DRAWS, n)
    words = [catalog.NAMES_BY_LINE[catalog.PRODUCT_LINES[i][0]] for i in line]
    name = pc.binary_join_element_wise(
        pa.array(year).cast(pa.string()), pa.array([m[j % len(m)] for (m, _), j in zip(words, makes, strict=True)]),
        pa.array([k[j % len(k)] for (_, k), j in zip(words, kinds, strict=True)]), " ")
    stock = rng.integers(0, 10_000, n)
    stock[rng.random(n) < 0.03] = 0  # out of stock
    line_price = np.array([55.0, 45.0, 50.0, 45.0, 40.0, 50.0, 45.0])[line]
    buy_cents = np.maximum(np.round(rng.lognormal(np.log(line_price), 0.35) * 100), 500)
    msrp_cents = np.round(buy_cents * rng.uniform(1.3, 2.2, n))
    lines = pa.array([catalog.PRODUCT_LINES[i][0] for i in range(len(catalog.PRODUCT_LINES))])
    table = pa.table({
        "productCode": code,
        "productName": name,
        "productLine": lines.take(pa.array(line)),
        "productScale": pa.array(catalog.SCALES).take(pa.array(scale)),
        "productVendor": _pick(catalog.VENDORS, rng, n),
        "productDescription": pc.binary_join_element_wise(
            _strs("A ", n), pa.array(catalog.SCALES).take(pa.array(scale)),
            _strs(" scale replica of the ", n), name, _strs(".", n), ""),
        "quantityInStock": pa.array(stock, pa.int16()),
        "buyPrice": pa.array(buy_cents / 100),
        "MSRP": pa.array(msrp_cents / 100),
    })
    return table, {"line": line, "scale": scale, "msrp": msrp_cents / 100}


def _staff() -> tuple[pa.Table, pa.Table, np.ndarray]:
    offices = pa.table({
        "officeCode": [o[0] for o in catalog.OFFICES],
        "city": [o[1] for o in catalog.OFFICES],
        "phone": [f"+1 650 219 {4782 + i:04d}" for i in range(len(catalog.OFFICES))],
        "addressLine1": [f"{100 + 7 * i} Market Street" for i in range(len(catalog.OFFICES))],
        "addressLine2": pa.array([None if i % 2 else f"Suite {300 + i}" for i in range(len(catalog.OFFICES))],
                                 pa.string()),
        "state": pa.array([o[2] for o in catalog.OFFICES], pa.string()),
        "country": [o[3] for o in catalog.OFFICES],
        "postalCode": [o[4] for o in catalog.OFFICES],
        "territory": [o[5] for o in catalog.OFFICES],
    })
    rows = [(1002, "Murphy", "Diane", "x5800", "1", None, "President"),
            (1056, "Patterson", "Mary", "x4611", "1", 1002, "VP Sales"),
            (1076, "Firrelli", "Jeff", "x9273", "1", 1002, "VP Marketing")]
    managers = {}
    for k, (code, *_rest) in enumerate(catalog.OFFICES):
        number = 1100 + k
        managers[code] = number
        rows.append((number, catalog.LAST_NAMES[k], catalog.FIRST_NAMES[k], f"x{101 + k}", code, 1056,
                     "Sales Manager"))
    reps = []
    for k in range(20):
        code = catalog.OFFICES[k % len(catalog.OFFICES)][0]
        number = 1165 + k * 3
        reps.append(number)
        rows.append((number, catalog.LAST_NAMES[(k + 9) % len(catalog.LAST_NAMES)],
                     catalog.FIRST_NAMES[(k + 11) % len(catalog.FIRST_NAMES)], f"x{3200 + k}", code,
                     managers[code], "Sales Rep"))
    employees = pa.table({
        "employeeNumber": pa.array([r[0] for r in rows], pa.int32()),
        "lastName": [r[1] for r in rows],
        "firstName": [r[2] for r in rows],
        "extension": [r[3] for r in rows],
        "email": [f"{r[2][0].lower()}{r[1].lower()}@classicmodelcars.com".encode("ascii", "ignore").decode()
                  for r in rows],
        "officeCode": [r[4] for r in rows],
        "reportsTo": pa.array([r[5] for r in rows], pa.int32()),
        "jobTitle": [r[6] for r in rows],
    })
    return offices, employees, np.array(reps)


def _customer_facts(spec: ShopSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """What the latent model reads of the customers: the customers stream's first draws, so the
    choice model is made again (``choice_truth``) without the table's names and addresses."""
    n = spec.customers
    weights = rng.dirichlet(np.full(len(catalog.PLACES), 2.0))
    place = rng.choice(len(catalog.PLACES), n, p=weights)
    active = rng.random(n) >= spec.inactive_fraction
    credit_cents = np.round(rng.lognormal(np.log(80_000), 0.45, n) / 100) * 10_000
    credit = credit_cents / 100
    credit[rng.random(n) < 0.05] = 0.0
    credit_null = rng.random(n) < 0.02
    return {"place": place, "active": active, "credit": np.where(credit_null, np.nan, credit),
            "number": np.arange(103, 103 + n, dtype=np.int64)}


def _customers(spec: ShopSpec, rng: np.random.Generator, reps: np.ndarray
               ) -> tuple[pa.Table, dict[str, np.ndarray]]:
    n = spec.customers
    places = catalog.PLACES
    facts = _customer_facts(spec, rng)
    place, active, credit, number = facts["place"], facts["active"], facts["credit"], facts["number"]
    rep = reps[rng.integers(0, len(reps), n)].astype(np.int64)

    city = pa.array([p[0] for p in places]).take(pa.array(place))
    state = pa.array([p[1] for p in places], pa.string()).take(pa.array(place))
    country = pa.array([p[2] for p in places]).take(pa.array(place))
    postal = _postal_codes(rng, place)
    postal_null = rng.random(n) < 0.04
    postal = pc.if_else(pa.array(postal_null), pa.scalar(None, pa.string()), postal)
    first = _pick(catalog.FIRST_NAMES, rng, n)
    last = _pick(catalog.LAST_NAMES, rng, n)
    table = pa.table({
        "customerNumber": pa.array(number, pa.int32()),
        "customerName": pc.binary_join_element_wise(
            last, _pick(catalog.COMPANY_WORDS, rng, n), _pick(catalog.COMPANY_WORDS, rng, n), " "),
        "contactLastName": last,
        "contactFirstName": first,
        "phone": pc.binary_join_element_wise(
            _strs("+", n), pa.array(rng.integers(1, 99, n)).cast(pa.string()), _strs(" ", n),
            pa.array(rng.integers(10_000_000, 99_999_999, n)).cast(pa.string()), ""),
        "addressLine1": pc.binary_join_element_wise(
            pa.array(rng.integers(1, 999, n)).cast(pa.string()), last, _strs("St.", n), " "),
        "addressLine2": pc.if_else(pa.array(rng.random(n) < 0.15),
                                   pc.binary_join_element_wise(_strs("Level", n), pa.array(
                                       rng.integers(1, 40, n)).cast(pa.string()), " "),
                                   pa.scalar(None, pa.string())),
        "city": city,
        "state": state,
        "postalCode": postal,
        "country": country,
        "salesRepEmployeeNumber": pa.array(np.where(active, rep, 0), pa.int32(),
                                           mask=~active),
        "creditLimit": pa.array(credit, from_pandas=True),  # NaN: no limit on record (null)
    })
    return table, facts


def _postal_codes(rng: np.random.Generator, place: np.ndarray) -> pa.Array:
    out = np.empty(len(place), dtype=object)
    out[:] = None
    for k, (_city, _state, _country, pattern) in enumerate(catalog.PLACES):
        rows = np.flatnonzero(place == k)
        if pattern is None or len(rows) == 0:
            continue
        chars = np.empty((len(rows), len(pattern)), dtype="<U1")
        for j, ch in enumerate(pattern):
            if ch == "#":
                chars[:, j] = np.array(list("0123456789"))[rng.integers(0, 10, len(rows))]
            elif ch == "A":
                chars[:, j] = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))[rng.integers(0, 23, len(rows))]
            else:
                chars[:, j] = ch
        out[rows] = chars.view(f"<U{len(pattern)}").ravel()
    return pa.array(out, pa.string())


@dataclass(frozen=True)
class LatentModel:
    """The planted structure the ratings and choices come from: a latent vector per customer
    (from country, city and credit limit) and per product (from line, scale and MSRP), the
    ratings' scale and biases, and the parts each vector is made of (recorded in the sidecar)."""

    user: np.ndarray  # customers × latent_dim
    item: np.ndarray  # products × latent_dim
    alpha: float  # scales user·item to the spec's signal_sd
    user_bias: np.ndarray
    item_bias: np.ndarray
    country: dict[str, np.ndarray]
    city: dict[str, np.ndarray]
    w_credit: np.ndarray
    line: dict[str, np.ndarray]
    scale: dict[str, np.ndarray]
    w_msrp: np.ndarray
    credit_std: dict[str, float]
    msrp_std: dict[str, float]


def _latent_model(spec: ShopSpec, rng: np.random.Generator, cust: dict[str, np.ndarray],
                  prod: dict[str, np.ndarray]) -> LatentModel:
    k = spec.latent_dim
    countries = sorted({p[2] for p in catalog.PLACES})
    country_vec = {c: rng.normal(0, 0.7, k) for c in countries}
    city_vec = {p[0]: rng.normal(0, 0.35, k) for p in catalog.PLACES}
    w_credit = rng.normal(0, 0.5, k)
    line_vec = {name: rng.normal(0, 0.7, k) for name, _ in catalog.PRODUCT_LINES}
    scale_vec = {s: rng.normal(0, 0.35, k) for s in catalog.SCALES}
    w_msrp = rng.normal(0, 0.5, k)

    credit = cust["credit"]
    c_mean, c_sd = float(np.nanmean(credit)), float(np.nanstd(credit) or 1.0)
    m_mean, m_sd = float(prod["msrp"].mean()), float(prod["msrp"].std() or 1.0)
    z_credit = np.nan_to_num((credit - c_mean) / c_sd)
    z_msrp = (prod["msrp"] - m_mean) / m_sd

    place_country = np.array([country_vec[p[2]] for p in catalog.PLACES])
    place_city = np.array([city_vec[p[0]] for p in catalog.PLACES])
    user = place_country[cust["place"]]  # summed in place, in the same order: the same values, one array
    user += place_city[cust["place"]]
    user += np.outer(z_credit, w_credit)
    lines = np.array([line_vec[name] for name, _ in catalog.PRODUCT_LINES])
    scales = np.array([scale_vec[s] for s in catalog.SCALES])
    item = lines[prod["line"]] + scales[prod["scale"]] + np.outer(z_msrp, w_msrp)

    probe_u = rng.integers(0, len(user), 20_000)
    probe_i = rng.integers(0, len(item), 20_000)
    raw_sd = float(np.einsum("ij,ij->i", user[probe_u], item[probe_i]).std()) or 1.0
    alpha = spec.signal_sd / raw_sd
    return LatentModel(
        user=user, item=item, alpha=alpha,
        user_bias=rng.normal(0, spec.user_effect_sd, len(user)),  # drawn in this order: the stream stays
        item_bias=rng.normal(0, spec.item_effect_sd, len(item)),
        country=country_vec, city=city_vec, w_credit=w_credit,
        line=line_vec, scale=scale_vec, w_msrp=w_msrp,
        credit_std={"mean": c_mean, "std": c_sd, "null_as": 0.0},
        msrp_std={"mean": m_mean, "std": m_sd},
    )


def _orders(spec: ShopSpec, rng: np.random.Generator, cust: dict[str, np.ndarray]
            ) -> tuple[pa.Table, np.ndarray]:
    buyers = np.flatnonzero(cust["active"])
    per = 1 + rng.poisson(spec.orders_per_customer - 1, len(buyers))
    order_cust = np.repeat(buyers, per)
    n = len(order_cust)
    date = EPOCH_2003 + np.sort(rng.integers(0, ORDER_SPAN_DAYS, n))
    status = rng.choice(len(catalog.STATUSES), n, p=[0.9, 0.02, 0.02, 0.02, 0.01, 0.03])
    shipped = date + rng.integers(1, 7, n)
    not_shipped = np.isin(status, [2, 5])  # Cancelled, In Process
    perm = rng.permutation(n)  # order numbers follow dates, customers interleave
    order_cust = order_cust[perm]
    comments = pc.if_else(pa.array(rng.random(n) < 0.2),
                          pa.array(["Check on availability."] * n), pa.scalar(None, pa.string()))
    table = pa.table({
        "orderNumber": pa.array(np.arange(10100, 10100 + n), pa.int32()),
        "orderDate": pa.array(date.astype(np.int32)).cast(pa.date32()),
        "requiredDate": pa.array((date + rng.integers(7, 11, n)).astype(np.int32)).cast(pa.date32()),
        "shippedDate": pa.array(shipped.astype(np.int32), mask=not_shipped).cast(pa.date32()),
        "status": pa.array(catalog.STATUSES).take(pa.array(status)),
        "comments": comments,
        "customerNumber": pa.array(cust["number"][order_cust], pa.int32()),
    })
    return table, order_cust


def _orderdetails(spec: ShopSpec, rng: np.random.Generator, draws: np.random.Generator, order: np.random.Generator,
                  products: pa.Table, prod: dict[str, np.ndarray], order_cust: np.ndarray, choice: choices.ChoiceModel
                  ) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Lines per order at random; what is on them from the choice model: each customer's
    lines, over all their orders, carry distinct products while there are enough to go round,
    in the order the walk takes them (``sequences.walk``): their orders' dates and line
    numbers follow it."""
    n_products = spec.products
    n_orders = len(order_cust)
    sellable = int(choice.sellable.sum())
    per = np.minimum(1 + rng.poisson(spec.lines_per_order - 1, n_orders), sellable)
    by_customer = np.argsort(order_cust, kind="stable")
    line_order = np.repeat(by_customer, per[by_customer])
    line_cust = order_cust[line_order]
    wanted = np.bincount(line_cust, minlength=len(choice.user))
    chosen_u, chosen_i = choices.draw(choice, draws, wanted)
    chosen_i = sequences.walk(choice.sequence, chosen_u, chosen_i, order)
    got = np.bincount(chosen_u, minlength=len(choice.user))
    first_chosen = np.concatenate([[0], np.cumsum(got)[:-1]])
    first_line = np.concatenate([[0], np.cumsum(wanted)[:-1]])
    j = np.arange(len(line_order)) - first_line[line_cust]  # the customer's j-th line
    line_prod = chosen_i[first_chosen[line_cust] + j % got[line_cust]]
    # one line per (order, product), the first time the walk reaches it; lines numbered in walk order
    keep = _first(line_order.astype(np.int64) * n_products + line_prod)
    keep = keep[np.argsort(line_order[keep], kind="stable")]  # by order, the walk's order within one
    line_order, line_prod = line_order[keep], line_prod[keep]
    starts = np.searchsorted(line_order, np.arange(n_orders))
    line_number = np.arange(len(line_order)) - starts[line_order] + 1
    quantity = rng.integers(20, 67, len(line_order))
    price_cents = np.round(prod["msrp"][line_prod] * 100 * rng.uniform(0.8, 1.0, len(line_order)))
    table = pa.table({
        "orderNumber": pa.array(10100 + line_order, pa.int32()),
        "productCode": products["productCode"].take(pa.array(line_prod)),
        "quantityOrdered": pa.array(quantity, pa.int32()),
        "priceEach": pa.array(price_cents / 100),
        "orderLineNumber": pa.array(line_number, pa.int16()),
    })
    return table, line_order, line_prod, quantity * price_cents, (chosen_u, chosen_i)


def _payments(rng: np.random.Generator, orders: pa.Table, order_cust: np.ndarray,
              cust: dict[str, np.ndarray], line_order: np.ndarray, line_total_cents: np.ndarray
              ) -> pa.Table:
    n = orders.num_rows
    total = np.bincount(line_order, weights=line_total_cents, minlength=n)
    paid = (pc.equal(orders["status"], "Shipped").to_numpy(zero_copy_only=False)) & (total > 0)
    idx = np.flatnonzero(paid)
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
    prefix = np.char.add(letters[rng.integers(0, 24, len(idx))], letters[rng.integers(0, 24, len(idx))])
    days = orders["orderDate"].cast(pa.int32()).to_numpy()[idx] + rng.integers(3, 40, len(idx))
    table = pa.table({
        "customerNumber": pa.array(cust["number"][order_cust[idx]], pa.int32()),
        "checkNumber": pc.binary_join_element_wise(
            pa.array(prefix), pa.array(200_000 + idx).cast(pa.string()), ""),
        "paymentDate": pa.array(days.astype(np.int32)).cast(pa.date32()),
        "amount": pa.array(np.round(total[idx]) / 100),
    })
    return table.sort_by([("customerNumber", "ascending"), ("checkNumber", "ascending")])


def _ratings(spec: ShopSpec, rng: np.random.Generator, products: pa.Table,
             cust: dict[str, np.ndarray], model: LatentModel, line_cust: np.ndarray,
             line_prod: np.ndarray) -> tuple[pa.Table, dict[str, float], dict[str, np.ndarray]]:
    n_products = spec.products
    pairs = _distinct(line_cust.astype(np.int64) * n_products + line_prod)
    u, i = pairs // n_products, pairs % n_products
    signal = spec.mu + model.alpha * np.einsum("ij,ij->i", model.user[u], model.item[i])
    visible = signal + model.item_bias[i]  # products are identifiable by their features
    known = visible + model.user_bias[u]
    z = known + rng.normal(0, spec.noise_sd, len(pairs))
    rating = np.clip(np.rint(z), 1, 5).astype(np.int32)
    features_sd = math.sqrt(spec.noise_sd**2 + spec.user_effect_sd**2)
    floors = {
        "features": _floor(visible, features_sd),
        "identity": _floor(known, spec.noise_sd),
        "ratings": len(pairs),
    }
    table = pa.table({
        "customerNumber": pa.array(cust["number"][u], pa.int32()),
        "productCode": products["productCode"].take(pa.array(i)),
        "productRating": pa.array(rating, pa.int32()),
    })
    truth = {"features": visible, "features_sd": np.full(len(pairs), features_sd),
             "identity": known, "identity_sd": np.full(len(pairs), spec.noise_sd),
             "customer_row": u, "product_row": i}
    return table, floors, truth


def best_prediction(mean: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """E[r | m] and Var[r | m] for r = clip(round(m + N(0, sd²)), 1, 5)."""
    if sd == 0:
        r = np.clip(np.rint(mean), 1, 5)
        return r, np.zeros_like(r)
    edges = np.array([1.5, 2.5, 3.5, 4.5])
    cdf = _normal_cdf((edges[None, :] - mean[:, None]) / sd)  # P(r <= k) for k = 1..4
    ones = np.ones((len(mean), 1))
    probs = np.diff(np.concatenate([0 * ones, cdf, ones], axis=1), axis=1)
    k = np.arange(1, 6)
    expected = probs @ k
    return expected, probs @ (k**2) - expected**2


def _floor(mean: np.ndarray, sd: float) -> float:
    """sqrt(E[Var[r | m]]): the best RMSE reachable by anyone who knows only ``m``."""
    if len(mean) == 0:
        return float("nan")
    return float(math.sqrt(max(best_prediction(mean, sd)[1].mean(), 0.0)))


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7: ample for an RMSE floor.
    z = np.abs(x) / math.sqrt(2)
    t = 1 / (1 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1 - poly * np.exp(-z * z)
    return 0.5 * (1 + np.sign(x) * erf)


def _first(keys: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each key, in their original order."""
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort beats np.unique's hashing at this size)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _strs(value: str, n: int) -> pa.Array:
    return pa.array([value]).take(pa.array(np.zeros(n, dtype=np.int64)))


def _pick(words: tuple[str, ...], rng: np.random.Generator, n: int) -> pa.Array:
    return pa.array(words).take(pa.array(rng.integers(0, len(words), n)))
