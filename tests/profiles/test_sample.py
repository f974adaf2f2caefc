"""Sample data: deterministic per seed, realistic shape, the dirt real data has."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from segsync.profiles.sample import TIERS, generate_sample

N = 20_000
TODAY = date(2025, 3, 1)
VALID = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@pytest.fixture(scope="module")
def sample() -> tuple[pa.Table, pa.Table]:
    return generate_sample(N, 7, today=TODAY)


def test_same_seed_same_data(sample: tuple[pa.Table, pa.Table]) -> None:
    customers, orders = generate_sample(N, 7, today=TODAY)
    assert customers.equals(sample[0])
    assert orders.equals(sample[1])


def test_another_seed_other_data(sample: tuple[pa.Table, pa.Table]) -> None:
    customers, _ = generate_sample(N, 8, today=TODAY)
    assert customers.column("Email") != sample[0].column("Email")


def test_columns_and_types(sample: tuple[pa.Table, pa.Table]) -> None:
    customers, orders = sample
    assert customers.schema.names == [
        "CustomerId",
        "Email",
        "FirstName",
        "LastName",
        "City",
        "Country",
        "LoyaltyTier",
        "BirthDate",
        "SignupDate",
        "IsSubscribed",
        "LifetimeValue",
    ]
    assert customers.schema.field("BirthDate").type == pa.date32()
    assert customers.schema.field("IsSubscribed").type == pa.bool_()
    assert orders.schema.names == ["OrderId", "CustomerId", "OrderDate", "Amount", "Channel"]
    assert customers.num_rows == N
    assert pc.count_distinct(customers.column("CustomerId")).as_py() == N
    assert set(customers.column("LoyaltyTier").to_pylist()) == set(TIERS)
    assert set(orders.column("Channel").to_pylist()) == {"web", "store", "app", "phone"}


def test_about_five_orders_per_customer_all_of_known_customers(
    sample: tuple[pa.Table, pa.Table],
) -> None:
    customers, orders = sample
    assert 4.8 * N < orders.num_rows < 5.2 * N
    assert pc.all(pc.is_in(orders.column("CustomerId"), customers.column("CustomerId"))).as_py()
    assert pc.count_distinct(orders.column("OrderId")).as_py() == orders.num_rows


def test_orders_fall_in_the_two_years_before_today(sample: tuple[pa.Table, pa.Table]) -> None:
    dates = sample[1].column("OrderDate")
    midnight = datetime(TODAY.year, TODAY.month, TODAY.day)
    assert pc.max(dates).as_py() <= midnight
    assert pc.min(dates).as_py() >= midnight - timedelta(days=731)
    assert pc.min(dates).as_py() < midnight - timedelta(days=700)  # spread, not bunched


def test_lifetime_value_is_the_sum_of_orders(sample: tuple[pa.Table, pa.Table]) -> None:
    customers, orders = sample
    first = orders.filter(pc.equal(orders.column("CustomerId"), 1))
    expected = round(sum(first.column("Amount").to_pylist()), 2)
    assert customers.column("LifetimeValue")[0].as_py() == pytest.approx(expected)


def test_email_dirt_ratios(sample: tuple[pa.Table, pa.Table]) -> None:
    emails = sample[0].column("Email")
    missing = emails.null_count / N
    present = pc.drop_null(emails)
    trimmed = pc.utf8_trim_whitespace(present)
    invalid = pc.sum(pc.invert(pc.match_substring_regex(trimmed, VALID))).as_py() / N
    spaced = pc.sum(pc.not_equal(present, trimmed)).as_py() / N
    normalised = pc.utf8_lower(trimmed)
    shared = 1 - pc.count_distinct(normalised).as_py() / len(normalised)
    mixed = pc.sum(pc.not_equal(trimmed, pc.utf8_lower(trimmed))).as_py() / N
    assert 0.015 < missing < 0.025
    assert 0.007 < invalid < 0.013
    assert 0.002 < shared < 0.004  # 0.5% of profiles share, so a quarter-percent are repeats
    assert 0.03 < spaced < 0.07
    assert 0.05 < mixed < 0.15


def test_there_are_lisbon_customers(sample: tuple[pa.Table, pa.Table]) -> None:
    customers = sample[0]
    lisbon = customers.filter(pc.equal(customers.column("City"), "Lisbon"))
    assert lisbon.num_rows > N * 0.03
    assert set(lisbon.column("Country").to_pylist()) == {"Portugal"}


def test_zero_profiles_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_sample(0, 1)
