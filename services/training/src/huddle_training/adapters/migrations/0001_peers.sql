-- The minimal peer roster: pseudonyms only (the staff reference is never stored), per network.
CREATE TABLE peer (
    network_id     text        NOT NULL,
    pseudonym      text        NOT NULL,
    hospital_id    text        NOT NULL,
    unit_id        text        NOT NULL,
    discipline     text        NOT NULL,
    clinical_area  text,
    languages      text[]      NOT NULL CHECK (cardinality(languages) >= 1),
    gender         text,
    registered_at  timestamptz NOT NULL,
    status         text        NOT NULL DEFAULT 'registered'
                   CHECK (status IN ('registered', 'certified', 'lapsed', 'withdrawn')),
    PRIMARY KEY (network_id, pseudonym)
);
CREATE INDEX peer_by_hospital ON peer (network_id, hospital_id, pseudonym);

-- Every certification recorded, refreshers included: the newest one says until when a peer is current.
CREATE TABLE certification (
    id            uuid        PRIMARY KEY,
    network_id    text        NOT NULL,
    peer          text        NOT NULL,
    certified_at  timestamptz NOT NULL,
    valid_until   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    CHECK (valid_until > certified_at),
    FOREIGN KEY (network_id, peer) REFERENCES peer (network_id, pseudonym)
);
CREATE INDEX certification_by_peer ON certification (network_id, peer, certified_at DESC);

ALTER TABLE peer ENABLE ROW LEVEL SECURITY;
ALTER TABLE peer FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON peer
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE certification ENABLE ROW LEVEL SECURITY;
ALTER TABLE certification FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certification
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
