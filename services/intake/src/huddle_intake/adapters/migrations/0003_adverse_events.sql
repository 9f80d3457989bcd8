-- Adverse events as intake keeps them: no patient, no narrative, no staff identifier in clear.
CREATE TABLE adverse_event (
    adverse_event_id        uuid        PRIMARY KEY,
    network_id              text        NOT NULL,
    hospital_id             text        NOT NULL,
    unit_ids                text[]      NOT NULL,
    event_class             text        NOT NULL,
    harm_level              text        NOT NULL,
    categories              text[]      NOT NULL,
    occurred_at             timestamptz NOT NULL,
    reported_at             timestamptz NOT NULL,
    -- Keyed digest (HMAC with the network's secret) of the reporter's own event id: a report
    -- sent twice is answered with the first result, and the id itself is never stored.
    reporter_event_digest   text        NOT NULL,
    reported_by             text        NOT NULL CHECK (reported_by ~ '^p_[0-9a-f]{32}$'),
    outreach_triggered      boolean     NOT NULL,
    group_debrief_requested boolean     NOT NULL,
    support_requests        integer     NOT NULL,
    unknown_staff           integer     NOT NULL,
    UNIQUE (network_id, reporter_event_digest)
);

-- Everyone involved, by pseudonym, and the outreach request each was offered (if any).
CREATE TABLE adverse_event_involved (
    adverse_event_id  uuid    NOT NULL REFERENCES adverse_event (adverse_event_id) ON DELETE CASCADE,
    network_id        text    NOT NULL,
    pseudonym         text    NOT NULL CHECK (pseudonym ~ '^p_[0-9a-f]{32}$'),
    hospital_id       text    NOT NULL,
    unit_id           text    NOT NULL,
    discipline        text    NOT NULL,
    -- Known to the workforce directory; otherwise placed by unit_for_unknown_staff.
    in_directory      boolean NOT NULL,
    case_id           uuid    REFERENCES support_request (case_id) ON DELETE SET NULL,
    PRIMARY KEY (adverse_event_id, pseudonym)
);
CREATE INDEX adverse_event_involved_by_person ON adverse_event_involved (network_id, pseudonym);

-- Which events offer support to everyone involved: the network's policy (hospital_id null) and
-- each hospital's own, which replaces it whole.
CREATE TABLE outreach_policy (
    network_id   text        NOT NULL,
    hospital_id  text,
    harm_levels  text[]      NOT NULL,
    categories   text[]      NOT NULL,
    near_misses  boolean     NOT NULL,
    updated_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX outreach_policy_of_network ON outreach_policy (network_id)
    WHERE hospital_id IS NULL;
CREATE UNIQUE INDEX outreach_policy_of_hospital ON outreach_policy (network_id, hospital_id)
    WHERE hospital_id IS NOT NULL;

-- Idempotency-Key: the first answer to a request, replayed to its retries. Key and request are
-- kept as keyed digests (a reporter may use its own event id as the key).
CREATE TABLE idempotency_key (
    network_id      text        NOT NULL,
    key_digest      text        NOT NULL,
    request_digest  text        NOT NULL,
    response_status integer     NOT NULL,
    response_body   jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (network_id, key_digest)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['adverse_event', 'adverse_event_involved', 'outreach_policy',
                             'idempotency_key']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;
