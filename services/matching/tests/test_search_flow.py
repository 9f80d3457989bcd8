"""The search for a peer, on the real database: offer, decline, lapse, widen, escalate, accept,
release; and a surge matched as a batch. Events are handed to the handlers as the consumer
would (inside a unit of work); answers go through the HTTP API."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, time, timedelta

import pytest
from huddle_contracts.events import (
    CaseClosed,
    MatchEscalated,
    PeerCertified,
    PeerMatched,
    SupportRequested,
    SupportWithdrawn,
)
from huddle_contracts.vocabulary import EscalationReason, Withdrawal
from huddle_local.issuer import LocalIssuer
from huddle_matching.adapters import repository
from huddle_matching.application.events import Handlers
from huddle_matching.domain.response_times import (
    HospitalCalendar,
    ResponsePolicy,
    first_contact_deadline,
)
from huddle_matching.entrypoints.scheduler import run_due
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration


def staff(settings, network: str, ref: str) -> str:
    return pseudonym_for(settings.pseudonym_key, network, ref)


async def deliver(m, event) -> None:
    async with m.app.state.runtime.unit_of_work(Tenant(m.network)) as uow:
        handler = Handlers(m.matching).subscriptions()[event.event_type]
        await handler(uow, event, None)


def certify(m, ref: str, **changes) -> PeerCertified:
    fields = {
        "peer": staff(m.app.state.settings, m.network, ref),
        "network_id": m.network,
        "hospital_id": "st-mary",
        "unit_id": "surgery",
        "discipline": "nurse",
        "languages": ("en",),
        "certified_at": m.clock() - timedelta(days=10),
        "valid_until": m.clock() + timedelta(days=300),
    }
    return PeerCertified.model_validate({**fields, **changes})


def request(m, ref: str, **changes) -> SupportRequested:
    fields = {
        "case_id": uuid.uuid4(),
        "network_id": m.network,
        "hospital_id": "st-mary",
        "unit_id": "icu",
        "requester": staff(m.app.state.settings, m.network, ref),
        "discipline": "nurse",
        "origin": "self",
        "urgency": "urgent",
        "requested_at": m.clock(),
    }
    return SupportRequested.model_validate({**fields, **changes})


async def on_call(m, local_issuer: LocalIssuer, *refs: str, hospital: str = "st-mary") -> None:
    token = local_issuer.mint(role="coordinator", network=m.network)
    for ref in refs:
        response = await m.client.post(
            "/v1/rota/shifts",
            json={
                "peer": staff(m.app.state.settings, m.network, ref),
                "hospital_id": hospital,
                "starts_at": (m.clock() - timedelta(hours=1)).isoformat(),
                "ends_at": (m.clock() + timedelta(hours=12)).isoformat(),
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text


def as_peer(m, local_issuer: LocalIssuer, ref: str) -> dict[str, str]:
    token = local_issuer.mint(role="peer", network=m.network, subject=ref)
    return {"Authorization": f"Bearer {token}"}


async def offers_of(m, local_issuer, ref: str) -> list[dict]:
    response = await m.client.get("/v1/offers", headers=as_peer(m, local_issuer, ref))
    assert response.status_code == 200, response.text
    return response.json()


async def test_decline_then_silence_moves_on_then_widens_escalates_and_is_accepted(
    matching, local_issuer, published
) -> None:
    m = matching
    for ref, changes in [
        ("N1", {"discipline": "nurse"}),
        ("N2", {"discipline": "physician"}),
        ("N3", {"hospital_id": "st-luke", "discipline": "nurse"}),
    ]:
        await deliver(m, certify(m, ref, **changes))
    await on_call(m, local_issuer, "N1", "N2")
    await on_call(m, local_issuer, "N3", hospital="st-luke")
    need = request(m, "W1")
    await deliver(m, need)

    [first] = await offers_of(m, local_issuer, "N1")  # same discipline first
    assert first["case_id"] == str(need.case_id)
    declined = await m.client.post(
        f"/v1/offers/{first['offer_id']}/decline", headers=as_peer(m, local_issuer, "N1")
    )
    assert declined.status_code == 204

    [second] = await offers_of(m, local_issuer, "N2")  # then the next peer in the hospital
    m.clock.advance(minutes=11)  # silence past respond_by (urgent offers: 10 minutes)
    assert await run_due(m.app.state.runtime, m.matching) >= 1
    assert await offers_of(m, local_issuer, "N2") == []

    [third] = await offers_of(m, local_issuer, "N3")  # widened to the network
    escalations = [e for e in await published(m.app, m.network) if isinstance(e, MatchEscalated)]
    assert [(e.case_id, e.hospital_id, e.reason) for e in escalations] == [
        (need.case_id, "st-mary", EscalationReason.OFFERS_EXHAUSTED)
    ]
    assert escalations[0].widened_to_network

    accepted = await m.client.post(
        f"/v1/offers/{third['offer_id']}/accept", headers=as_peer(m, local_issuer, "N3")
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["mode"] == "phone"  # a peer from another hospital supports remotely
    [matched] = [e for e in await published(m.app, m.network) if isinstance(e, PeerMatched)]
    assert matched.peer == staff(m.app.state.settings, m.network, "N3")
    assert matched.first_offered_at is not None and matched.respond_by is not None

    again = await m.client.post(
        f"/v1/offers/{third['offer_id']}/accept", headers=as_peer(m, local_issuer, "N3")
    )
    assert again.status_code == 409

    coordinator = local_issuer.mint(role="coordinator", network=m.network)
    explained = await m.client.get(
        f"/v1/cases/{need.case_id}/candidates", headers={"Authorization": f"Bearer {coordinator}"}
    )
    assert explained.status_code == 200
    assert [o["status"] for o in explained.json()["offers"]] == ["declined", "expired", "accepted"]

    await deliver(
        m,
        CaseClosed(
            network_id=m.network,
            hospital_id="st-mary",
            case_id=need.case_id,
            peer=matched.peer,
            sessions=2,
            referral_made=False,
            opened_at=m.clock(),
            closed_at=m.clock(),
        ),
    )
    async with m.app.state.runtime.unit_of_work(Tenant(m.network)) as uow:
        load = await uow.conn.fetchval(
            "SELECT active_cases FROM peer WHERE pseudonym = $1", matched.peer
        )
    assert load == 0  # load is released when the case closes


async def test_no_eligible_peer_anywhere_escalates_naming_the_request_and_hospital(
    matching, published
) -> None:
    m = matching
    await deliver(m, certify(m, "SELF"))  # the only peer is the requester
    need = request(m, "SELF", urgency="routine")
    await deliver(m, need)
    escalations = [e for e in await published(m.app, m.network) if isinstance(e, MatchEscalated)]
    assert (escalations[0].case_id, escalations[0].hospital_id, escalations[0].reason) == (
        need.case_id,
        "st-mary",
        EscalationReason.NO_ELIGIBLE_PEER,
    )


async def test_a_worker_who_declines_outreach_is_no_longer_offered(matching, local_issuer) -> None:
    m = matching
    await deliver(m, certify(m, "P1"))
    need = request(m, "W2", urgency="routine", origin="outreach")
    await deliver(m, need)
    assert len(await offers_of(m, local_issuer, "P1")) == 1
    await deliver(
        m,
        SupportWithdrawn(
            network_id=m.network,
            hospital_id="st-mary",
            case_id=need.case_id,
            reason=Withdrawal.DECLINED_OFFER,
            withdrawn_at=m.clock(),
        ),
    )
    assert await offers_of(m, local_issuer, "P1") == []


async def test_a_surge_is_matched_as_a_batch_with_nobody_over_capacity(
    matching, local_issuer
) -> None:
    m = matching
    peers = [f"S{i}" for i in range(6)]
    for ref in peers:
        await deliver(m, certify(m, ref, unit_id="ward-9"))
    await on_call(m, local_issuer, *peers)
    involved = [staff(m.app.state.settings, m.network, f"I{i}") for i in range(8)]
    event_id = uuid.uuid4()
    for i in range(len(involved)):
        await deliver(
            m,
            request(
                m,
                f"I{i}",
                origin="outreach",
                adverse_event_id=event_id,
                involved=tuple(involved),
                urgency="urgent",
            ),
        )
    offered = Counter()
    for ref in peers:
        offered[ref] = len(await offers_of(m, local_issuer, ref))
    assert sum(offered.values()) == 8
    assert max(offered.values()) <= 3  # default capacity
    assert min(offered.values()) >= 1  # load is spread before it is stacked


async def test_two_searches_at_once_never_offer_a_peers_last_place_twice(
    matching, local_issuer
) -> None:
    m = matching
    await deliver(m, certify(m, "ONE"))
    response = await m.client.put(
        "/v1/peers/me/availability", headers=as_peer(m, local_issuer, "ONE"), json={"capacity": 1}
    )
    assert response.status_code == 204, response.text
    # Both searches read the roster before either commits; the peer's row is held by the first.
    needs = [request(m, f"RACE{i}", urgency="routine") for i in range(4)]
    await asyncio.gather(*(deliver(m, need) for need in needs))
    assert len(await offers_of(m, local_issuer, "ONE")) == 1


async def test_two_searches_at_once_both_go_to_the_peer_with_room_for_both(
    matching, local_issuer
) -> None:
    m = matching
    await deliver(m, certify(m, "ROOMY"))
    await deliver(m, certify(m, "FALLBACK", discipline="physician"))
    response = await m.client.put(
        "/v1/peers/me/availability", headers=as_peer(m, local_issuer, "ROOMY"), json={"capacity": 2}
    )
    assert response.status_code == 204, response.text
    # The second search finds the nurse's row held by the first: it waits for that offer to
    # commit, not for a worse match (the physician), as the nurse has room for both.
    needs = [request(m, f"PAIR{i}", urgency="routine") for i in range(2)]
    await asyncio.gather(*(deliver(m, need) for need in needs))
    assert len(await offers_of(m, local_issuer, "ROOMY")) == 2
    assert await offers_of(m, local_issuer, "FALLBACK") == []


async def test_once_a_wait_for_a_held_peer_runs_out_searches_stop_waiting_for_a_while(
    matching, local_issuer
) -> None:
    m = matching
    await deliver(m, certify(m, "HELD"))
    await deliver(m, certify(m, "FREE", discipline="physician"))
    held = staff(m.app.state.settings, m.network, "HELD")
    wait = m.matching.held_peer_wait
    # A large batch elsewhere holds the nurse's row for longer than a search waits.
    async with m.app.state.runtime.unit_of_work(Tenant(m.network)) as other:
        await other.conn.execute("SELECT 1 FROM peer WHERE pseudonym = $1 FOR UPDATE", held)
        await deliver(m, request(m, "FIRST", urgency="routine"))
        assert (wait.waited, wait.ran_out) == (1, 1)
        assert not wait.may_wait()
        await deliver(m, request(m, "SECOND", urgency="routine"))
        assert wait.waited == 1  # went on at once
    assert len(await offers_of(m, local_issuer, "FREE")) == 2
    assert await offers_of(m, local_issuer, "HELD") == []
    scraped = (await m.client.get("/metrics")).text
    assert "huddle_matching_held_peer_waits_total 1.0" in scraped
    assert "huddle_matching_held_peer_waits_run_out_total 1.0" in scraped


async def test_a_surge_beyond_the_hospital_widens_together_and_nobody_goes_over_capacity(
    matching, local_issuer, published
) -> None:
    m = matching
    local, remote = ["H0", "H1"], ["R0", "R1", "R2"]
    for ref in local:
        await deliver(m, certify(m, ref, unit_id="ward-9"))
    for ref in remote:
        await deliver(m, certify(m, ref, hospital_id="st-luke"))
    await on_call(m, local_issuer, *local)
    await on_call(m, local_issuer, *remote, hospital="st-luke")
    involved = [staff(m.app.state.settings, m.network, f"J{i}") for i in range(12)]
    event_id = uuid.uuid4()
    cases = []
    for i in range(len(involved)):
        need = request(
            m, f"J{i}", adverse_event_id=event_id, involved=tuple(involved), origin="outreach"
        )
        cases.append(need.case_id)
        await deliver(m, need)
    offered = {ref: len(await offers_of(m, local_issuer, ref)) for ref in local + remote}
    # 2 x 3 places in st-mary, then 6 of st-luke's 9: every case offered, nobody over capacity.
    assert [offered[ref] for ref in local] == [3, 3]
    assert sum(offered[ref] for ref in remote) == 6
    assert max(offered.values()) <= 3
    escalations = [e for e in await published(m.app, m.network) if isinstance(e, MatchEscalated)]
    widened = {e.case_id for e in escalations if e.reason is EscalationReason.NO_ELIGIBLE_PEER}
    assert len(widened) == 6 and widened <= set(cases)
    assert all(e.widened_to_network for e in escalations)


async def test_a_surge_with_no_peer_anywhere_alerts_the_coordinators_once_per_case(
    matching, published
) -> None:
    m = matching
    involved = [staff(m.app.state.settings, m.network, f"E{i}") for i in range(7)]
    event_id = uuid.uuid4()
    for i in range(len(involved)):
        await deliver(
            m,
            request(
                m, f"E{i}", adverse_event_id=event_id, involved=tuple(involved), origin="outreach"
            ),
        )
    escalations = [e for e in await published(m.app, m.network) if isinstance(e, MatchEscalated)]
    per_case = Counter(e.case_id for e in escalations)
    assert len(per_case) == 7 and set(per_case.values()) == {1}


async def test_a_surge_across_two_hospitals_searches_each_hospital_first(
    matching, local_issuer, published
) -> None:
    m = matching
    await deliver(m, certify(m, "LUKE", hospital_id="st-luke"))
    await on_call(m, local_issuer, "LUKE", hospital="st-luke")
    involved = [staff(m.app.state.settings, m.network, f"X{i}") for i in range(7)]
    event_id = uuid.uuid4()
    cases = {}
    for i in range(len(involved)):
        # Six from st-mary, which has no peer; the last from st-luke, which has one.
        hospital = "st-luke" if i == 6 else "st-mary"
        need = request(
            m,
            f"X{i}",
            adverse_event_id=event_id,
            involved=tuple(involved),
            origin="outreach",
            hospital_id=hospital,
        )
        cases[need.case_id] = hospital
        await deliver(m, need)
    offered = [cases[uuid.UUID(o["case_id"])] for o in await offers_of(m, local_issuer, "LUKE")]
    assert "st-luke" in offered  # searched in its own hospital, never widened
    escalations = [e for e in await published(m.app, m.network) if isinstance(e, MatchEscalated)]
    assert {cases[e.case_id] for e in escalations} == {"st-mary"}


async def test_another_network_cannot_answer_or_see_an_offer(matching, local_issuer) -> None:
    m = matching
    await deliver(m, certify(m, "P9"))
    await deliver(m, request(m, "W9", urgency="routine"))
    [offer] = await offers_of(m, local_issuer, "P9")
    stranger = local_issuer.mint(role="peer", network="elsewhere", subject="P9")
    response = await m.client.post(
        f"/v1/offers/{offer['offer_id']}/accept", headers={"Authorization": f"Bearer {stranger}"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_peer_whose_certification_lapsed_cannot_accept_and_the_case_moves_on(
    matching, local_issuer
) -> None:
    from huddle_contracts.events import CertificationLapsed

    m = matching
    await deliver(m, certify(m, "L1"))
    await deliver(m, certify(m, "L2"))
    need = request(m, "W-L", urgency="routine")
    await deliver(m, need)
    holder = "L1" if await offers_of(m, local_issuer, "L1") else "L2"
    [offer] = await offers_of(m, local_issuer, holder)
    other = "L2" if holder == "L1" else "L1"
    await deliver(
        m,
        CertificationLapsed(
            network_id=m.network,
            hospital_id="st-mary",
            peer=staff(m.app.state.settings, m.network, holder),
            lapsed_at=m.clock(),
        ),
    )
    accepted = await m.client.post(
        f"/v1/offers/{offer['offer_id']}/accept", headers=as_peer(m, local_issuer, holder)
    )
    assert accepted.status_code == 409
    assert len(await offers_of(m, local_issuer, other)) == 1  # already moved on


async def test_unanswered_offers_count_against_capacity(matching, local_issuer) -> None:
    m = matching
    admin = {
        "Authorization": "Bearer " + local_issuer.mint(role="network_admin", network=m.network)
    }
    assert (
        await m.client.put("/v1/policy", headers=admin, json={"default_capacity": 1})
    ).status_code == 204
    await deliver(m, certify(m, "C1"))
    await deliver(m, certify(m, "C2"))
    for i in range(2):
        await deliver(m, request(m, f"W-C{i}", urgency="routine"))
    assert len(await offers_of(m, local_issuer, "C1")) == 1
    assert len(await offers_of(m, local_issuer, "C2")) == 1
    raise_cap = await m.client.put(
        "/v1/peers/me/availability", headers=as_peer(m, local_issuer, "C1"), json={"capacity": 5}
    )
    assert raise_cap.status_code == 422


async def test_searching_again_while_an_offer_is_open_changes_nothing(
    matching, local_issuer
) -> None:
    m = matching
    await deliver(m, certify(m, "R1"))
    await deliver(m, certify(m, "R2"))
    need = request(m, "W-R", urgency="routine")
    await deliver(m, need)
    coordinator = {
        "Authorization": "Bearer " + local_issuer.mint(role="coordinator", network=m.network)
    }
    again = await m.client.post(f"/v1/cases/{need.case_id}/search", headers=coordinator)
    assert again.status_code == 200 and again.json()["offered_to"] is None
    assert (
        len(await offers_of(m, local_issuer, "R1")) + len(await offers_of(m, local_issuer, "R2"))
        == 1
    )


async def test_a_peer_who_became_full_cannot_accept_and_nothing_of_the_accept_is_kept(
    matching, local_issuer
) -> None:
    m = matching
    await deliver(m, certify(m, "F1"))
    need = request(m, "W-F", urgency="routine")
    await deliver(m, need)
    [offer] = await offers_of(m, local_issuer, "F1")
    peer = staff(m.app.state.settings, m.network, "F1")
    async with m.app.state.runtime.unit_of_work(Tenant(m.network)) as uow:
        # Full since the offer was made (cases taken elsewhere in the meantime).
        await uow.conn.execute("UPDATE peer SET active_cases = capacity WHERE pseudonym = $1", peer)
    accepted = await m.client.post(
        f"/v1/offers/{offer['offer_id']}/accept", headers=as_peer(m, local_issuer, "F1")
    )
    assert accepted.status_code == 409
    assert "capacity" in accepted.json()["detail"]
    async with m.app.state.runtime.unit_of_work(Tenant(m.network)) as uow:
        # The statement itself changes nothing for a full peer, whatever its caller does next.
        taken = await repository.take_case(
            uow.conn, peer, m.clock(), offer_id=uuid.UUID(offer["offer_id"]), case_id=need.case_id
        )
        assert taken is None
        kept = await uow.conn.fetchrow(
            """SELECT o.status AS offer, s.status AS search, s.matched_peer,
                      p.active_cases = p.capacity AS still_full, p.last_matched_at
                 FROM offer o JOIN support_request s USING (case_id)
                 JOIN peer p ON p.pseudonym = o.peer
                WHERE o.offer_id = $1""",
            uuid.UUID(offer["offer_id"]),
        )
    assert dict(kept) == {
        "offer": "open",
        "search": "offered",
        "matched_peer": None,
        "still_full": True,
        "last_matched_at": None,
    }


async def test_a_new_requests_deadline_follows_the_networks_policy_and_its_hospitals_calendar(
    matching, local_issuer
) -> None:
    m = matching
    admin = {
        "Authorization": "Bearer " + local_issuer.mint(role="network_admin", network=m.network)
    }
    coordinator = {
        "Authorization": "Bearer " + local_issuer.mint(role="coordinator", network=m.network)
    }
    policy = {"routine_working_hours": 8, "urgent_first_contact_minutes": 45}
    assert (await m.client.put("/v1/policy", headers=admin, json=policy)).status_code == 204
    calendar = {"time_zone": "Europe/Oslo", "working_days": [0, 1, 2], "day_start": "08:00:00"}
    calendar["day_end"] = "16:00:00"
    put = await m.client.put("/v1/hospitals/st-mary/calendar", headers=coordinator, json=calendar)
    assert put.status_code == 204
    response = ResponsePolicy(urgent_first_contact=timedelta(minutes=45), routine_working_hours=8)
    oslo = HospitalCalendar(
        time_zone="Europe/Oslo",
        working_days=frozenset({0, 1, 2}),
        day_start=time(8),
        day_end=time(16),
    )
    cases = [
        (request(m, "W-D1", urgency="routine"), oslo),
        (request(m, "W-D2", urgency="urgent"), oslo),
        (request(m, "W-D3", urgency="routine", hospital_id="st-olav"), HospitalCalendar()),
    ]
    for need, _ in cases:
        await deliver(m, need)
    for need, hospital_calendar in cases:
        shown = await m.client.get(f"/v1/cases/{need.case_id}/candidates", headers=coordinator)
        expected = first_contact_deadline(
            need.requested_at, need.urgency, hospital_calendar, response
        )
        assert datetime.fromisoformat(shown.json()["first_contact_by"]) == expected, need.urgency
