"""Only administrators change data sources (R2, R3: contributors make segments, not imports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segsync.domain.permissions import Role
from segsync.errors import PermissionDenied
from segsync.services import profiles
from segsync.services.context import ServiceContext
from tests.services.export_fixtures import acting_as


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_non_administrators_may_not_import_relate_or_load_sample(
    service_context: ServiceContext, tmp_path: Path, role: Role
) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("Id,Email\n1,a@example.com\n")
    someone = acting_as(service_context, role)
    with pytest.raises(PermissionDenied):
        profiles.import_profiles(someone, csv, "people", key="Id", profile=True)
    with pytest.raises(PermissionDenied):
        profiles.load_sample(someone, profiles=10)
    with pytest.raises(PermissionDenied):
        profiles.relate(someone, "orders", "CustomerId", "customers", "CustomerId")
    assert not service_context.profiles.has_table("people")

    report = profiles.import_profiles(service_context, csv, "people", key="Id", profile=True)
    assert report.rows == 1
