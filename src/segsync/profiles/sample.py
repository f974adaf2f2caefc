"""Realistic sample profiles (customers) and orders, with the dirt real data has.

Faker draws pools of names and cities once per country; every row is then drawn from those
pools with a seeded NumPy generator and assembled with Arrow compute, so a million profiles take
seconds. The same ``seed`` and ``today`` always give the same data.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_TODAY = date(2025, 6, 30)
"""The default reference date (orders lie in the two years before it)."""

TIERS = ("Bronze", "Silver", "Gold", "Platinum")
CHANNELS = ("web", "store", "app", "phone")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")

# Share of each kind of dirt among customers' emails.
MISSING_EMAILS = 0.02
INVALID_EMAILS = 0.01
SHARED_EMAILS = 0.005  # profiles whose email another profile also has
MIXED_CASE = 0.10
STRAY_SPACES = 0.05


@dataclass(frozen=True)
class _Country:
    name: str
    locale: str
    weight: float
    fixed_cities: tuple[tuple[str, float], ...] = ()  # (city, share of this country)


COUNTRIES = (
    _Country("Portugal", "pt_PT", 0.18, (("Lisbon", 0.35), ("Porto", 0.15))),
    _Country("United States", "en_US", 0.30),
    _Country("United Kingdom", "en_GB", 0.15, (("London", 0.2),)),
    _Country("Germany", "de_DE", 0.15, (("Berlin", 0.15),)),
    _Country("France", "fr_FR", 0.12, (("Paris", 0.2),)),
    _Country("Spain", "es_ES", 0.10, (("Madrid", 0.2),)),
)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


@dataclass(frozen=True)
class _Pools:
    first: list[str]
    last: list[str]
    cities: list[str]
    city_weights: np.ndarray  # per city, summing to 1
    first_range: list[tuple[int, int]]  # per country: [start, end) into ``first``
    last_range: list[tuple[int, int]]
    city_range: list[tuple[int, int]]


def _pools(seed: int) -> _Pools:
    from faker import Faker  # here, not at the top: every run process imports this module

    first: list[str] = []
    last: list[str] = []
    cities: list[str] = []
    weights: list[float] = []
    first_range, last_range, city_range = [], [], []
    for index, country in enumerate(COUNTRIES):
        fake = Faker(country.locale)
        fake.seed_instance(seed * 31 + index)
        names = sorted({fake.first_name() for _ in range(400)})
        surnames = sorted({fake.last_name() for _ in range(400)})
        fixed = [city for city, _ in country.fixed_cities]
        others = sorted({fake.city() for _ in range(60)} - set(fixed))
        first_range.append((len(first), len(first) + len(names)))
        last_range.append((len(last), len(last) + len(surnames)))
        city_range.append((len(cities), len(cities) + len(fixed) + len(others)))
        first += names
        last += surnames
        rest = 1.0 - sum(share for _, share in country.fixed_cities)
        cities += fixed + others
        weights += [share for _, share in country.fixed_cities]
        weights += [rest / len(others)] * len(others)
    return _Pools(first, last, cities, np.array(weights), first_range, last_range, city_range)


def _draw(
    rng: np.random.Generator, country: np.ndarray, ranges: list[tuple[int, int]]
) -> np.ndarray:
    """For each row, an index into a pool, uniform within its country's slice."""
    out = np.empty(len(country), dtype=np.int32)
    for index, (start, end) in enumerate(ranges):
        mask = country == index
        out[mask] = rng.integers(start, end, int(mask.sum()))
    return out


def _draw_city(rng: np.random.Generator, country: np.ndarray, pools: _Pools) -> np.ndarray:
    out = np.empty(len(country), dtype=np.int32)
    for index, (start, end) in enumerate(pools.city_range):
        mask = country == index
        weights = pools.city_weights[start:end]
        out[mask] = rng.choice(np.arange(start, end), int(mask.sum()), p=weights / weights.sum())
    return out


def _strings(indexes: np.ndarray, pool: list[str] | tuple[str, ...]) -> pa.Array:
    dictionary = pa.array(list(pool), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(indexes, type=pa.int32()), dictionary).cast(
        pa.string()
    )


def _days_before(today: date, days: np.ndarray) -> pa.Array:
    epoch_days = (today - date(1970, 1, 1)).days
    return pa.array(epoch_days - days, type=pa.int32()).cast(pa.date32())


def _emails(rng: np.random.Generator, first: pa.Array, last: pa.Array, n: int) -> pa.Array:
    number = pa.array(rng.integers(1, 10_000, n)).cast(pa.string())
    domain = _strings(rng.integers(0, len(DOMAINS), n), DOMAINS)
    emails = pc.binary_join_element_wise(first, ".", last, number, "@", domain, "")

    order = rng.permutation(n)
    cut = np.cumsum([int(n * MISSING_EMAILS), int(n * INVALID_EMAILS), int(n * SHARED_EMAILS)])
    missing, invalid, shared = order[: cut[0]], order[cut[0] : cut[1]], order[cut[1] : cut[2]]

    # 0.5% of profiles share their email with one other profile (pairs).
    half = len(shared) // 2
    values = emails.to_numpy(zero_copy_only=False)
    values[shared[half : 2 * half]] = values[shared[:half]]
    emails = pa.array(values, type=pa.string())

    def mask_of(rows: np.ndarray) -> pa.Array:
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        return pa.array(mask)

    mixed = rng.random(n) < MIXED_CASE
    upper = rng.random(n) < 0.3
    emails = pc.if_else(pa.array(mixed & upper), pc.utf8_upper(emails), emails)
    emails = pc.if_else(pa.array(mixed & ~upper), pc.utf8_capitalize(emails), emails)
    spaced = pa.array(rng.random(n) < STRAY_SPACES)
    emails = pc.if_else(spaced, pc.binary_join_element_wise(" ", emails, "  ", ""), emails)

    kind = rng.integers(0, 3, n)
    broken = pc.if_else(
        pa.array(kind == 0),
        pc.replace_substring(emails, "@", ""),  # no @ at all
        pc.if_else(
            pa.array(kind == 1),
            pc.replace_substring_regex(emails, "@.*$", "@"),  # no domain
            pc.replace_substring(emails, ".", " ", max_replacements=1),  # a space inside
        ),
    )
    emails = pc.if_else(mask_of(invalid), broken, emails)
    return pc.if_else(mask_of(missing), pa.nulls(n, pa.string()), emails)


def generate_sample(
    profiles: int, seed: int, *, today: date = SAMPLE_TODAY, orders_per_profile: float = 5.0
) -> tuple[pa.Table, pa.Table]:
    """Customers (the profile table, keyed ``CustomerId``) and their orders (``OrderId``;
    about ``orders_per_profile`` per customer over the two years before ``today``)."""
    if profiles < 1:
        raise ValueError("profiles must be at least 1")
    rng = np.random.default_rng(seed)
    pools = _pools(seed)
    n = profiles
    weights = np.array([c.weight for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), n, p=weights / weights.sum())
    first_idx = _draw(rng, country, pools.first_range)
    last_idx = _draw(rng, country, pools.last_range)
    slugs_first = [_slug(name) or "x" for name in pools.first]
    slugs_last = [_slug(name) or "x" for name in pools.last]
    emails = _emails(rng, _strings(first_idx, slugs_first), _strings(last_idx, slugs_last), n)

    orders_count = rng.poisson(orders_per_profile, n)
    customer_of_order = np.repeat(np.arange(n), orders_count)
    m = len(customer_of_order)
    amounts = np.round(rng.lognormal(3.6, 0.75, m), 2)
    lifetime = np.round(np.bincount(customer_of_order, weights=amounts, minlength=n), 2)
    start = datetime.combine(today, time(0), tzinfo=UTC).timestamp()
    seconds = rng.integers(0, 730 * 86_400, m)
    order_dates = pa.array(((start - seconds) * 1_000_000).astype(np.int64)).cast(
        pa.timestamp("us")
    )
    channel_p = np.array([0.45, 0.20, 0.25, 0.10])

    customers = pa.table(
        {
            "CustomerId": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "Email": emails,
            "FirstName": _strings(first_idx, pools.first),
            "LastName": _strings(last_idx, pools.last),
            "City": _strings(_draw_city(rng, country, pools), pools.cities),
            "Country": _strings(country, [c.name for c in COUNTRIES]),
            "LoyaltyTier": _strings(rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05]), TIERS),
            "BirthDate": _days_before(today, rng.integers(18 * 365, 85 * 365, n)),
            "SignupDate": _days_before(today, rng.integers(0, 6 * 365, n)),
            "IsSubscribed": pa.array(rng.random(n) < 0.7),
            "LifetimeValue": pa.array(lifetime, type=pa.float64()),
        }
    )
    orders = pa.table(
        {
            "OrderId": pa.array(np.arange(1, m + 1, dtype=np.int64)),
            "CustomerId": pa.array(customer_of_order + 1, type=pa.int64()),
            "OrderDate": order_dates,
            "Amount": pa.array(amounts, type=pa.float64()),
            "Channel": _strings(rng.choice(4, m, p=channel_p), CHANNELS),
        }
    )
    return customers, orders
