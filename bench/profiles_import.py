"""Profile import and sample-data figures (prints them; not a test).

    python bench/profiles_import.py [--profiles 1000000]

1. generate N sample profiles (and ~5N orders) with ``generate_sample``;
2. write the customers as CSV and as Parquet, then time ``ProfileEngine.import_file`` of each
   into a fresh DuckDB file (key checked: present, non-empty, unique);
3. time loading the generated Arrow tables (what ``segsync profiles sample`` does).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from segsync.profiles.engine import ProfileEngine
from segsync.profiles.sample import generate_sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    start = time.perf_counter()
    customers, orders = generate_sample(args.profiles, args.seed)
    generated = time.perf_counter() - start
    print(
        f"generate_sample: {customers.num_rows:,} profiles + {orders.num_rows:,} orders "
        f"in {generated:.2f} s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_path, parquet_path = root / "customers.csv", root / "customers.parquet"
        pa_csv.write_csv(customers, csv_path)
        pq.write_table(customers, parquet_path)
        size_mb = csv_path.stat().st_size / 1e6
        engine = ProfileEngine.connect(f"duckdb://{root / 'profiles.duckdb'}")
        try:
            for label, path in (("CSV", csv_path), ("Parquet", parquet_path)):
                start = time.perf_counter()
                result = engine.import_file(path, "customers", key="CustomerId", replace=True)
                took = time.perf_counter() - start
                print(
                    f"import {label} ({path.stat().st_size / 1e6:.0f} MB) into DuckDB: "
                    f"{result.rows:,} rows, {len(result.columns)} attributes in {took:.2f} s "
                    f"({result.rows / took / 1e6:.2f} M rows/s)"
                )
            start = time.perf_counter()
            engine.import_arrow(customers, "customers", key="CustomerId", replace=True)
            engine.import_arrow(orders, "orders", key="OrderId", replace=True)
            took = time.perf_counter() - start
            print(f"load sample Arrow tables into DuckDB (customers + orders): {took:.2f} s")
        finally:
            engine.close()
        print(f"(CSV file: {size_mb:.0f} MB)")


if __name__ == "__main__":
    main()
