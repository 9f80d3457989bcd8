"""The first real path: intake stores a request and emits SupportRequested through its outbox;
matching consumes it through its inbox and records it. One trace spans both services."""

from __future__ import annotations

import uuid

import pytest
from huddle_e2e.harness import eventually, migrate_service, running_app, service_settings
from huddle_e2e.privacy import bytes_on_the_bus
from huddle_intake.service import DEFINITION as INTAKE
from huddle_local.issuer import LocalIssuer
from huddle_matching.service import DEFINITION as MATCHING
from huddle_runtime.tenancy import Tenant
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.e2e

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracer_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider()  # type: ignore[return-value]


async def test_a_request_flows_to_matching_exactly_once_without_identifiers_and_in_one_trace(
    database_url: str, topics: str, local_issuer: LocalIssuer, tracer_provider: TracerProvider
) -> None:
    settings = {
        d.name: service_settings(
            d, database_url=database_url, kafka_bootstrap=topics, jwks_file=local_issuer.jwks_path
        )
        for d in (INTAKE, MATCHING)
    }
    for d in (INTAKE, MATCHING):
        await migrate_service(d, settings[d.name])

    staff_id, colleague_id = f"E{uuid.uuid4().hex[:7]}", f"E{uuid.uuid4().hex[:7]}"
    phone, email = "+1 555 0100 4242", f"dana.{uuid.uuid4().hex[:6]}@hospital.example"
    token = local_issuer.mint(role="worker", network="north", hospital="st-mary", subject=staff_id)
    async with (
        running_app(INTAKE, settings["intake"], tracer_provider=tracer_provider) as (_, intake),
        running_app(MATCHING, settings["matching"], tracer_provider=tracer_provider) as (
            matching_app,
            _,
        ),
    ):
        response = await intake.post(
            "/v1/support-requests",
            json={
                "unit_id": "ed",
                "discipline": "physician",
                "origin": "colleague",
                "person_ref": colleague_id,
                "urgency": "urgent",
                "contact": {"phone": phone, "email": email},
                "preferences": {"own_unit": False, "language": "es"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        case_id = uuid.UUID(response.json()["case_id"])

        async def recorded() -> list:
            async with matching_app.state.runtime.unit_of_work(Tenant("north")) as uow:
                return await uow.conn.fetch(
                    "SELECT * FROM support_request WHERE case_id = $1", case_id
                )

        await eventually(lambda: _non_empty(recorded), what="matching records the request")
        [row] = await recorded()
        assert (row["unit_id"], row["discipline"], row["urgency"]) == ("ed", "physician", "urgent")
        assert row["requester"].startswith("p_") and colleague_id not in row["requester"]

    spans = EXPORTER.get_finished_spans()
    http = [s for s in spans if s.name.startswith("POST /v1/support-requests")]
    handled = [s for s in spans if s.name == "huddle.support-requested.v1 process"]
    assert http and handled
    assert handled[-1].context.trace_id in {s.context.trace_id for s in http}

    in_traces = repr([(s.name, dict(s.attributes or {}), s.events) for s in spans]).encode()
    on_the_bus = await bytes_on_the_bus(topics)
    assert str(case_id).encode() in on_the_bus  # the scan does read this request's records
    for identifier in (phone, "0100 4242", email, staff_id, colleague_id, "dana."):
        assert identifier.encode() not in on_the_bus, f"{identifier!r} reached Kafka"
        assert identifier.encode() not in in_traces, f"{identifier!r} reached a trace"


async def _non_empty(probe) -> bool:
    return bool(await probe())
