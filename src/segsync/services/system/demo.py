"""The demo's set-up (I5): sample profiles, two segments, a connection and an export.

The CLI's ``segsync demo`` starts the simulator, calls :func:`set_up_demo`, then runs the export
twice through the ordinary run service, so the demo exercises exactly what users run.
"""

from __future__ import annotations

from dataclasses import dataclass

from segsync.domain.fields import FieldCatalogue
from segsync.services.connections import manage as connections
from segsync.services.connections.inputs import NewConnection
from segsync.services.connections.types import connection_type
from segsync.services.context import ServiceContext
from segsync.services.exports import manage as exports
from segsync.services.exports.inputs import DataMatching, ExportSettings, MappingLine
from segsync.services.profiles import manage as profiles
from segsync.services.segments import manage as segments

DEMO_EXPORT = "Newsletter audiences"

# Two overlapping segments over the sample data: a person in both is one contact on two lists.
DEMO_SEGMENTS = (
    """\
name: Lisbon and Porto customers
description: Everyone who lives in Lisbon or Porto.
rules:
  - conditions:
      any:
        - {attribute: City, op: equals, value: Lisbon}
        - {attribute: City, op: equals, value: Porto}
""",
    """\
name: Loyal big spenders
description: Gold or Platinum members who spent over 100 in the last year.
rules:
  - conditions:
      all:
        - {attribute: LoyaltyTier, op: in, value: [Gold, Platinum]}
  - combine: intersect
    related: orders
    conditions:
      all:
        - {attribute: orders.OrderDate, op: within_last, value: {months: 12}}
    having:
      all:
        - {aggregate: sum, attribute: orders.Amount, op: greater_than, value: 100}
""",
)


@dataclass(frozen=True)
class DemoSetup:
    customers: int
    orders: int
    segments: list[tuple[str, int]]
    connection: str
    export: str


def set_up_demo(
    ctx: ServiceContext,
    *,
    base_url: str,
    api_key: str,
    profiles_count: int,
    rate_limit: float,
    destination: str = "autopilot",
) -> DemoSetup:
    """Load sample profiles, save and refresh the two segments, connect to the
    ``destination`` type at ``base_url`` (the key is checked, as Connect does) and save an
    export of both segments."""
    sample = profiles.load_sample(ctx, profiles=profiles_count, seed=42)
    names = [segments.create_segment(ctx, text, "yaml").name for text in DEMO_SEGMENTS]
    refreshed = segments.refresh_segments(ctx, names)
    kind = connection_type(destination)
    connection = connections.add_connection(
        ctx,
        NewConnection(
            f"{kind.display_name} (simulator)",
            type=kind.name,
            api_key=api_key,
            base_url=base_url,
            rate_limit=rate_limit,
        ),
        agree=True,
    )
    matching = demo_matching(kind.catalogue)
    exports.create_export(ctx, ExportSettings(DEMO_EXPORT, connection.id, matching, names))
    return DemoSetup(
        customers=sample.customers,
        orders=sample.orders,
        segments=[(outcome.name, outcome.member_count or 0) for outcome in refreshed],
        connection=connection.name,
        export=DEMO_EXPORT,
    )


def demo_matching(catalogue: FieldCatalogue) -> DataMatching:
    """The demo's data matching on any destination: email and names, the standard fields for
    the city and the country (Autopilot's ``MailingCity``, Ortto's City), and the loyalty tier
    as a custom text field, each where the destination's catalogue has it."""
    lines = []
    for attribute in ("City", "Country"):
        found = next(
            (
                item.key
                for item in catalogue.standard
                if attribute.lower() in (item.key.lower()[-len(attribute) :], item.label.lower())
            ),
            None,
        )
        if found is not None:
            lines.append(MappingLine(found, attribute))
    if "string" in catalogue.custom_types:
        lines.append(MappingLine("custom:string:Loyalty Tier", "LoyaltyTier"))
    return DataMatching(
        email="Email",
        first_name="FirstName" if catalogue.first_name_key else None,
        last_name="LastName" if catalogue.last_name_key else None,
        lines=lines,
    )
