-- Peer care: sessions each peer led since their last debrief (from SessionCompleted), the
-- debrief prompts they raise, and the supervision and debrief meetings coordinators hold.
-- No case or session identifiers are kept: only the peer's pseudonym and counts.
CREATE TABLE peer_care (
    network_id              text        NOT NULL,
    peer                    text        NOT NULL CHECK (peer ~ '^p_[0-9a-f]{32}$'),
    hospital_id             text        NOT NULL,
    sessions_since_debrief  integer     NOT NULL DEFAULT 0 CHECK (sessions_since_debrief >= 0),
    prompted_for_sessions   boolean     NOT NULL DEFAULT false,
    last_debrief_at         timestamptz,
    PRIMARY KEY (network_id, peer)
);

CREATE TABLE debrief_prompt (
    id                      uuid        PRIMARY KEY,
    network_id              text        NOT NULL,
    peer                    text        NOT NULL CHECK (peer ~ '^p_[0-9a-f]{32}$'),
    hospital_id             text        NOT NULL,
    reasons                 text[]      NOT NULL CHECK (cardinality(reasons) >= 1
                                          AND reasons <@ ARRAY['sessions', 'referral']),
    sessions_since_debrief  integer     NOT NULL,
    prompted_at             timestamptz NOT NULL,
    cleared_at              timestamptz
);
CREATE INDEX debrief_prompt_open_by_peer ON debrief_prompt (network_id, peer)
    WHERE cleared_at IS NULL;
CREATE INDEX debrief_prompt_by_hospital ON debrief_prompt (network_id, hospital_id, prompted_at);

CREATE TABLE meeting (
    id           uuid        PRIMARY KEY,
    network_id   text        NOT NULL,
    hospital_id  text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('supervision', 'debrief')),
    starts_at    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (network_id, id)
);
CREATE INDEX meeting_by_hospital ON meeting (network_id, hospital_id, starts_at);

CREATE TABLE meeting_attendance (
    network_id   text        NOT NULL,
    meeting_id   uuid        NOT NULL,
    peer         text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (meeting_id, peer),
    FOREIGN KEY (network_id, meeting_id) REFERENCES meeting (network_id, id),
    FOREIGN KEY (network_id, peer) REFERENCES peer (network_id, pseudonym)
);

ALTER TABLE peer_care ENABLE ROW LEVEL SECURITY;
ALTER TABLE peer_care FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON peer_care
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE debrief_prompt ENABLE ROW LEVEL SECURITY;
ALTER TABLE debrief_prompt FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON debrief_prompt
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE meeting ENABLE ROW LEVEL SECURITY;
ALTER TABLE meeting FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON meeting
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE meeting_attendance ENABLE ROW LEVEL SECURITY;
ALTER TABLE meeting_attendance FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON meeting_attendance
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
