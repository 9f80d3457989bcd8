"""The peer roster in PostgreSQL (row-level security scopes every query to the tenant)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from huddle_contracts.vocabulary import Discipline, Gender

from huddle_training.domain.certification import Certification
from huddle_training.domain.roster import Peer, PeerStatus

# Each peer with their newest certification, which says until when they are current.
_PEERS = """
SELECT p.*, c.certified_at, c.valid_until
  FROM peer p
  LEFT JOIN LATERAL (
        SELECT certified_at, valid_until FROM certification
         WHERE network_id = p.network_id AND peer = p.pseudonym
         ORDER BY certified_at DESC, recorded_at DESC
         LIMIT 1) c ON true
"""


async def add(conn: asyncpg.Connection, peer: Peer) -> bool:
    """Put ``peer`` on the roster; False (and nothing written) when already on it."""
    added = await conn.fetchval(
        """INSERT INTO peer (network_id, pseudonym, hospital_id, unit_id, discipline,
               clinical_area, languages, gender, registered_at, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (network_id, pseudonym) DO NOTHING
           RETURNING true""",
        peer.network_id,
        peer.pseudonym,
        peer.hospital_id,
        peer.unit_id,
        peer.discipline.value,
        peer.clinical_area,
        list(peer.languages),
        peer.gender.value if peer.gender else None,
        peer.registered_at,
        peer.status.value,
    )
    return bool(added)


async def get(conn: asyncpg.Connection, pseudonym: str, *, for_update: bool = False) -> Peer | None:
    """The peer; ``for_update`` locks the row so concurrent changes to one peer run one by one."""
    query = _PEERS + " WHERE p.pseudonym = $1" + (" FOR UPDATE OF p" if for_update else "")
    row = await conn.fetchrow(query, pseudonym)
    return _peer(row) if row is not None else None


async def list_peers(
    conn: asyncpg.Connection,
    *,
    hospital_id: str | None,
    status: PeerStatus | None,
    after: str | None,
    limit: int,
) -> list[Peer]:
    """A page of peers in pseudonym order, from after ``after`` (keyset paging)."""
    rows = await conn.fetch(
        _PEERS
        + """ WHERE ($1::text IS NULL OR p.hospital_id = $1)
                AND ($2::text IS NULL OR p.status = $2)
                AND ($3::text IS NULL OR p.pseudonym > $3)
              ORDER BY p.pseudonym
              LIMIT $4""",
        hospital_id,
        status.value if status else None,
        after,
        limit,
    )
    return [_peer(row) for row in rows]


async def set_status(conn: asyncpg.Connection, peer: Peer) -> None:
    await conn.execute(
        "UPDATE peer SET status = $2 WHERE pseudonym = $1", peer.pseudonym, peer.status.value
    )


async def add_certification(conn: asyncpg.Connection, certification: Certification) -> None:
    await conn.execute(
        """INSERT INTO certification (id, network_id, peer, certified_at, valid_until, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        certification.certification_id,
        certification.network_id,
        certification.peer,
        certification.certified_at,
        certification.valid_until,
        certification.recorded_at,
    )


def _peer(row: asyncpg.Record) -> Peer:
    return Peer(
        pseudonym=row["pseudonym"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        unit_id=row["unit_id"],
        discipline=Discipline(row["discipline"]),
        languages=tuple(row["languages"]),
        registered_at=row["registered_at"],
        status=PeerStatus(row["status"]),
        clinical_area=row["clinical_area"],
        gender=Gender(row["gender"]) if row["gender"] else None,
        certified_at=row["certified_at"],
        valid_until=row["valid_until"],
    )


async def coverage(
    conn: asyncpg.Connection, *, hospital_id: str | None, lapsing_before: datetime
) -> dict[str, list[dict[str, object]]]:
    """Certified peers per hospital and discipline, per discipline, and who lapses before
    ``lapsing_before``."""
    rows = await conn.fetch(
        f"""SELECT hospital_id, discipline, count(*) AS certified
              FROM ({_PEERS}) peers
             WHERE status = 'certified' AND ($1::text IS NULL OR hospital_id = $1)
             GROUP BY hospital_id, discipline ORDER BY hospital_id, discipline""",
        hospital_id,
    )
    by_discipline = await conn.fetch(
        f"""SELECT discipline, count(*) AS certified
              FROM ({_PEERS}) peers
             WHERE status = 'certified' AND ($1::text IS NULL OR hospital_id = $1)
             GROUP BY discipline ORDER BY discipline""",
        hospital_id,
    )
    soon = await conn.fetch(
        f"""SELECT pseudonym AS peer, hospital_id, discipline, valid_until
              FROM ({_PEERS}) peers
             WHERE status = 'certified' AND valid_until < $2
               AND ($1::text IS NULL OR hospital_id = $1)
             ORDER BY valid_until""",
        hospital_id,
        lapsing_before,
    )
    return {
        "certified": [dict(r) for r in rows],
        "by_discipline": [dict(r) for r in by_discipline],
        "lapsing_soon": [dict(r) for r in soon],
    }
