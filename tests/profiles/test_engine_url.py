"""Profile engine URLs never show a password in messages."""

from __future__ import annotations

import pytest

from segsync.errors import FatalError
from segsync.profiles.engine import ProfileEngine, masked_url


def test_masked_url_hides_only_the_password_and_secret_options() -> None:
    assert masked_url("postgres://bob:s3cret@db:5432/x") == "postgres://bob:***@db:5432/x"
    assert masked_url("postgres://bob@db/x") == "postgres://bob@db/x"
    assert masked_url("duckdb:///tmp/a.duckdb") == "duckdb:///tmp/a.duckdb"
    assert masked_url("pyspark://local?master=yarn&spark.hadoop.fs.s3a.secret.key=abc&x=1") == (
        "pyspark://local?master=yarn&spark.hadoop.fs.s3a.secret.key=***&x=1"
    )
    assert masked_url("snowflake://u:pw@acct/db?private_key=PEM&warehouse=wh") == (
        "snowflake://u:***@acct/db?private_key=***&warehouse=wh"
    )


def test_a_failed_connection_does_not_print_the_password() -> None:
    with pytest.raises(FatalError) as caught:
        ProfileEngine.connect("postgres://bob:s3cret-pw@127.0.0.1:1/nowhere")
    assert "s3cret-pw" not in caught.value.message
    assert "bob:***@" in caught.value.message
