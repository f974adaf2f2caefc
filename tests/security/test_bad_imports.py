"""Files that are not what their name says, or CSVs that do not read cleanly, are refused with
the line and what to do, before anything is stored (issue 14 §2, §5). Through the service, the
CLI (exit 2) and DuckDB, the default engine."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from segsync.errors import InputError
from segsync.services import profiles
from segsync.services.context import ServiceContext

GOOD = "CustomerId,Email\n1,a@example.com\n2,b@example.com\n"

REFUSED: list[tuple[str, bytes, str]] = [
    ("notgzip.csv.gz", GOOD.encode(), "ends in .gz but the file is not gzip"),
    ("zipped.csv", gzip.compress(GOOD.encode()), "gzip-compressed data, not CSV"),
    ("fake.parquet", GOOD.encode(), "ends in .parquet but the file is not a Parquet"),
    ("latin1.csv", "CustomerId,City\n1,Zürich\n".encode("latin-1"), "line 2 is not UTF-8"),
    ("nul.csv", b"CustomerId,Email\n1,a@example.com\n2,b\x00@example.com\n", "line 3 holds a NUL"),
    ("junk.csv", b'CustomerId,Email\n1,"a@example.com"junk\n', "line 2 cannot be read as CSV"),
    ("open.csv", b'CustomerId,Email\n1,"a@example.com\n2,b@example.com\n', "cannot be read as CSV"),
    ("dup.csv", b"CustomerId,Email,email\n1,a@x.com,b@x.com\n", "names column 'email' twice"),
    ("array.jsonl", b'[{"CustomerId": 1}]\n', "one JSON object per line"),
    (
        "truncated.csv.gz",
        gzip.compress((GOOD * 2000).encode())[:300],
        "cannot be read",
    ),
]


@pytest.mark.parametrize(("name", "content", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_bad_file_is_refused_and_nothing_is_stored(
    service_context: ServiceContext, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        profiles.import_profiles(service_context, path, "customers", key="CustomerId")
    assert reason in caught.value.message
    assert not service_context.profiles.has_table("customers")


def test_a_ten_megabyte_field_is_refused_with_a_short_message(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("CustomerId,Note\n1," + "x" * 10_000_000 + "\n")
    with pytest.raises(InputError, match="longer than 1,048,576 characters") as caught:
        profiles.import_profiles(service_context, path, "customers", key="CustomerId")
    assert len(caught.value.message) < 600
    assert "xxxxxxxxxx" not in caught.value.message


def test_the_good_file_and_its_gzip_still_import(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    quoted = GOOD + '3,"c,""quoted""@example.com"\n'
    (tmp_path / "good.csv").write_text(quoted)
    (tmp_path / "good.csv.gz").write_bytes(gzip.compress(quoted.encode()))
    for name in ("good.csv", "good.csv.gz"):
        result = profiles.import_profiles(
            service_context, tmp_path / name, "customers", key="CustomerId", replace=True
        )
        assert result.rows == 3
