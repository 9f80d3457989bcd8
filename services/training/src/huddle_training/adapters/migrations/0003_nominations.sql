-- Nominations: a colleague or leader puts a member of staff forward; the nominee consents or
-- refuses; a coordinator approves (enrolling them on the roster) or declines. People appear as
-- pseudonyms only.
CREATE TABLE nomination (
    id             uuid        PRIMARY KEY,
    network_id     text        NOT NULL,
    hospital_id    text        NOT NULL,
    unit_id        text        NOT NULL,
    discipline     text        NOT NULL,
    clinical_area  text,
    nominee        text        NOT NULL CHECK (nominee ~ '^p_[0-9a-f]{32}$'),
    nominated_by   text        NOT NULL CHECK (nominated_by ~ '^p_[0-9a-f]{32}$'),
    nominated_at   timestamptz NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'consented', 'refused', 'approved', 'declined')),
    languages      text[]      NOT NULL DEFAULT '{}',
    gender         text,
    answered_at    timestamptz,
    decided_by     text        CHECK (decided_by ~ '^p_[0-9a-f]{32}$'),
    decided_at     timestamptz,
    CHECK (nominee <> nominated_by),
    CHECK (status NOT IN ('consented', 'approved') OR cardinality(languages) >= 1),
    UNIQUE (network_id, id)
);
-- One open nomination per member of staff: a second one while the first waits is a conflict.
CREATE UNIQUE INDEX nomination_open_per_nominee ON nomination (network_id, nominee)
    WHERE status IN ('pending', 'consented');
CREATE INDEX nomination_by_hospital ON nomination (network_id, hospital_id, nominated_at);

ALTER TABLE nomination ENABLE ROW LEVEL SECURITY;
ALTER TABLE nomination FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON nomination
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
