"""A demo network for `huddle up`: two hospitals, certified peers on call, a referral catalogue,
so that the README's walkthrough works on a fresh machine. Idempotent: safe on every start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from huddle_contracts.events import Event, SupportRequested
from huddle_contracts.registry import encode_event

from huddle_local.issuer import LocalIssuer
from huddle_local.simulation import SOURCE, simulate

NETWORK = "demo"


@dataclass(frozen=True)
class DemoPeer:
    staff_ref: str
    hospital: str
    unit: str
    discipline: str
    clinical_area: str
    languages: tuple[str, ...]


PEERS = (
    DemoPeer("PEER-ANA", "general", "surgery", "nurse", "surgery", ("en", "es")),
    DemoPeer("PEER-BEN", "general", "emergency", "physician", "emergency", ("en",)),
    DemoPeer("PEER-CHI", "general", "oncology", "pharmacist", "oncology", ("en", "fr")),
    DemoPeer("PEER-DEV", "general", "icu", "allied_health", "icu", ("en",)),
    DemoPeer("PEER-EVA", "st-luke", "emergency", "nurse", "emergency", ("en", "de")),
    DemoPeer("PEER-FIN", "st-luke", "paediatrics", "physician", "paediatrics", ("en",)),
)

# The workforce directory: the demo peers, an ICU team and its manager (contact details are
# sealed by intake and only ever released to an assigned peer).
DIRECTORY = """staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name
M1001,general,icu,nurse,,m1001@general.example,,
E1001,general,icu,nurse,M1001,e1001@general.example,+44 7700 900001,
E1002,general,icu,physician,M1001,e1002@general.example,,
E1003,general,icu,allied_health,M1001,,,
PEER-ANA,general,surgery,nurse,,ana@general.example,,
PEER-BEN,general,emergency,physician,,ben@general.example,,
PEER-CHI,general,oncology,pharmacist,,chi@general.example,,
PEER-DEV,general,icu,allied_health,M1001,dev@general.example,,
PEER-EVA,st-luke,emergency,nurse,,eva@st-luke.example,,
PEER-FIN,st-luke,paediatrics,physician,,fin@st-luke.example,,
"""

CATALOGUE = [
    {"resource": "eap", "label": "Employee Assistance Programme", "how_to_reach": "ext. 4357"},
    {"resource": "psychologist", "label": "Staff psychology service", "how_to_reach": "ext. 2210"},
    {"resource": "chaplain", "label": "Chaplaincy", "how_to_reach": "ext. 1000"},
    {"resource": "crisis_line", "label": "Crisis line (24/7)", "how_to_reach": "988"},
]


def seed(issuer: LocalIssuer, ports: dict[str, int], database_url: str) -> list[str]:
    """Create what is missing; returns what was done, one line per step."""
    admin = {"Authorization": "Bearer " + issuer.mint(role="network_admin", network=NETWORK)}
    done: list[str] = []

    def url(service: str, path: str) -> str:
        return f"http://127.0.0.1:{ports[service]}{path}"

    with httpx.Client(timeout=10, headers=admin) as http:
        http.post(
            url("intake", "/v1/directory/import"),
            content=DIRECTORY,
            headers={"Content-Type": "text/csv"},
        ).raise_for_status()
        done.append("workforce directory: an ICU team, its manager and the peers")
        for peer in PEERS:
            registered = http.post(
                url("training", "/v1/peers"),
                json={
                    "staff_ref": peer.staff_ref,
                    "hospital_id": peer.hospital,
                    "unit_id": peer.unit,
                    "discipline": peer.discipline,
                    "clinical_area": peer.clinical_area,
                    "languages": list(peer.languages),
                },
            )
            if registered.status_code == 409:
                continue  # already on the roster from an earlier start
            registered.raise_for_status()
            pseudonym = registered.json()["peer"]
            http.post(
                url("training", f"/v1/peers/{pseudonym}/certifications"), json={}
            ).raise_for_status()
            done.append(f"certified {peer.staff_ref} ({peer.discipline}, {peer.hospital})")
        now = datetime.now(UTC)
        waiting = list(PEERS)
        deadline = time.monotonic() + 30
        while waiting and time.monotonic() < deadline:
            peer = waiting.pop(0)
            shift = http.post(
                url("matching", "/v1/rota/shifts"),
                json={
                    "peer": demo_pseudonym(peer.staff_ref),
                    "hospital_id": peer.hospital,
                    "starts_at": (now - timedelta(minutes=5)).isoformat(),
                    "ends_at": (now + timedelta(days=7)).isoformat(),
                },
            )
            if shift.status_code == 404:  # matching has not consumed the certification yet
                waiting.append(peer)
                time.sleep(0.2)
                continue
            shift.raise_for_status()
        if waiting:
            raise RuntimeError("matching did not learn of the demo peers' certifications in 30 s")
        done.append("put every demo peer on call for a week")
        for hospital in ("general", "st-luke"):
            http.put(
                url("sessions", f"/v1/hospitals/{hospital}/referral-catalogue"), json=CATALOGUE
            ).raise_for_status()
        done.append("referral catalogues for general and st-luke")
        done += seed_history(http, url, database_url)
    return done


def history_months(now: datetime) -> str:
    """The first month of the last calendar quarter that has closed: the demo's simulated
    quarter (analytics publishes closed months and quarters only)."""
    closed = now - timedelta(days=2)  # past the release's grace period too
    month = ((closed.month - 1) // 3) * 3 + 1 - 3
    year = closed.year - (1 if month < 1 else 0)
    return f"{year:04d}-{(month - 1) % 12 + 1:02d}"


def seed_history(
    http: httpx.Client, url: Callable[[str, str], str], database_url: str
) -> list[str]:
    """A simulated quarter of programme history for analytics, and its outcome surveys.

    The history goes straight into analytics' projections through its own handlers, not on the
    bus: the live services must not match, page or open cases for simulated staff.
    """
    sim = simulate(
        network=NETWORK,
        hospitals=("general", "st-luke"),
        first_month=history_months(datetime.now(UTC)),
        requests_per_hospital_month=45,
        seed=2026,
    )
    projected = asyncio.run(project_history(database_url, sim.events))
    if projected == 0:
        return ["analytics: the simulated quarter is already there"]
    done = [f"analytics: a simulated quarter ({', '.join(sim.months)}), {projected} events"]
    for survey in sim.surveys:
        form = {"hospital_id": survey.hospital}
        pre = http.post(
            url("analytics", f"/v1/surveys/{survey.instrument}/responses"),
            json={**form, "phase": "pre", "answers": survey.pre, "month": survey.pre_month},
        )
        pre.raise_for_status()
        if survey.post is not None:
            http.post(
                url("analytics", f"/v1/surveys/{survey.instrument}/responses"),
                json={
                    **form,
                    "phase": "post",
                    "answers": survey.post,
                    "month": survey.post_month,
                    "survey_code": pre.json()["survey_code"],
                },
            ).raise_for_status()
    done.append(f"analytics: {len(sim.surveys)} PHQ-9 and ProQOL 5 respondents, pre and post")
    released = http.post(url("analytics", "/v1/releases"))
    released.raise_for_status()
    done.append(f"analytics: {released.json()['released']} records on the analysts' stream")
    return done


async def project_history(database_url: str, events: list[Event]) -> int:
    """Fold the events into analytics' projections once; 0 when they are already there."""
    from huddle_analytics.application.projections import HANDLERS
    from huddle_runtime import database
    from huddle_runtime.settings import DatabaseSettings, ServiceSettings
    from huddle_runtime.tenancy import Tenant
    from huddle_runtime.unit_of_work import unit_of_work

    settings = ServiceSettings(
        service="analytics",
        environment="local",
        database=DatabaseSettings(url=database_url),
    )
    pool = await database.create_pool(settings)
    try:
        async with unit_of_work(pool, Tenant(NETWORK), source=SOURCE) as uow:
            # The simulation is seeded: its first case tells whether it was projected before.
            first = next(e for e in events if isinstance(e, SupportRequested))
            if await uow.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM support_case WHERE case_id = $1)", first.case_id
            ):
                return 0
            for event in events:
                await HANDLERS[event.event_type](uow, event, encode_event(event, source=SOURCE))
        return len(events)
    finally:
        await pool.close()


def demo_pseudonym(staff_ref: str) -> str:
    """The pseudonym the local stack's services derive (they run with the development key)."""
    from huddle_runtime.pseudonyms import pseudonym_for
    from huddle_runtime.settings import ServiceSettings

    key = ServiceSettings.model_fields["pseudonym_key"].default
    return pseudonym_for(key, NETWORK, staff_ref)
