-- Every certification a peer held, so that coverage on a past date counts a peer who has since
-- been recertified (peer_certification keeps only the latest one, for the stream's coarsening).
CREATE TABLE certification_period (
    network_id          text        NOT NULL,
    peer                text        NOT NULL,
    hospital_id         text        NOT NULL,
    discipline          text        NOT NULL,
    certified_at        timestamptz NOT NULL,
    valid_until         timestamptz NOT NULL,
    lapsed_at           timestamptz,
    PRIMARY KEY (network_id, peer, certified_at)
);

ALTER TABLE certification_period ENABLE ROW LEVEL SECURITY;
ALTER TABLE certification_period FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certification_period
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

INSERT INTO certification_period (network_id, peer, hospital_id, discipline, certified_at,
                                  valid_until, lapsed_at)
SELECT network_id, peer, hospital_id, discipline, certified_at, valid_until, lapsed_at
  FROM peer_certification;
