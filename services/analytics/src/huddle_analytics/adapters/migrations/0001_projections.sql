-- Anonymised projections of every programme event. No name, contact detail, staff or patient
-- number or narrative ever reaches analytics; peers appear by pseudonym only where a projection
-- needs to tell them apart (load, certification), and never leave this schema.

-- One row per support case, filled in by whichever event arrives first (topics are not ordered
-- with respect to one another).
CREATE TABLE support_case (
    network_id          text        NOT NULL,
    case_id             uuid        NOT NULL,
    surrogate           uuid        NOT NULL DEFAULT gen_random_uuid(),
    hospital_id         text        NOT NULL,
    discipline          text,
    clinical_area       text,
    origin              text,
    urgency             text,
    adverse_event_id    uuid,
    requested_at        timestamptz,
    first_offered_at    timestamptz,
    offers              integer     NOT NULL DEFAULT 0,
    matched_at          timestamptz,
    peer                text,
    mode                text,
    respond_by          timestamptz,
    first_contact_at    timestamptz,
    escalated_at        timestamptz,
    withdrawn_at        timestamptz,
    closed_at           timestamptz,
    tier                smallint    NOT NULL DEFAULT 2,
    referral            boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (network_id, case_id)
);
CREATE INDEX support_case_by_month ON support_case (network_id, requested_at);

CREATE TABLE session_record (
    network_id          text        NOT NULL,
    session_id          uuid        NOT NULL,
    case_id             uuid        NOT NULL,
    hospital_id         text        NOT NULL,
    peer                text        NOT NULL,
    mode                text        NOT NULL,
    tier                smallint    NOT NULL,
    grouped             boolean     NOT NULL,
    started_at          timestamptz NOT NULL,
    duration_minutes    integer     NOT NULL,
    participants        integer     NOT NULL,
    follow_up_planned   boolean     NOT NULL,
    referral_made       boolean     NOT NULL,
    PRIMARY KEY (network_id, session_id)
);
CREATE INDEX session_record_by_case ON session_record (network_id, case_id, started_at);
CREATE INDEX session_record_by_month ON session_record (network_id, started_at);

CREATE TABLE referral_record (
    network_id          text        NOT NULL,
    referral_id         uuid        NOT NULL,
    case_id             uuid        NOT NULL,
    hospital_id         text        NOT NULL,
    made_at             timestamptz NOT NULL,
    urgency             text        NOT NULL,
    resource            text        NOT NULL,
    by_peer             boolean     NOT NULL,
    PRIMARY KEY (network_id, referral_id)
);

CREATE TABLE adverse_event (
    network_id          text        NOT NULL,
    adverse_event_id    uuid        NOT NULL,
    hospital_id         text        NOT NULL,
    reported_at         timestamptz NOT NULL,
    event_class         text        NOT NULL,
    harm_level          text        NOT NULL,
    categories          text[]      NOT NULL,
    involved            integer     NOT NULL,
    outreach_triggered  boolean     NOT NULL,
    PRIMARY KEY (network_id, adverse_event_id)
);
CREATE INDEX adverse_event_by_month ON adverse_event (network_id, reported_at);

-- The certified roster, for training coverage: one row per peer, the latest certification.
CREATE TABLE peer_certification (
    network_id          text        NOT NULL,
    peer                text        NOT NULL,
    surrogate           uuid        NOT NULL DEFAULT gen_random_uuid(),
    hospital_id         text        NOT NULL,
    discipline          text        NOT NULL,
    clinical_area       text,
    certified_at        timestamptz NOT NULL,
    valid_until         timestamptz NOT NULL,
    lapsed_at           timestamptz,
    PRIMARY KEY (network_id, peer)
);

-- A random surrogate per peer for the analysts' stream (not derived from the pseudonym).
CREATE TABLE peer_surrogate (
    network_id          text        NOT NULL,
    peer                text        NOT NULL,
    surrogate           uuid        NOT NULL DEFAULT gen_random_uuid(),
    PRIMARY KEY (network_id, peer)
);

-- The analysts' stream, staged: one row per programme event, published (anonymised) once its
-- month has closed; rows whose group stays smaller than k wait for a later release.
CREATE TABLE programme_record (
    network_id          text        NOT NULL,
    record_id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    kind                text        NOT NULL,
    occurred_at         timestamptz NOT NULL,
    hospital_id         text        NOT NULL,
    -- What is released together, alike: 'case:<id>', 'peer:<pseudonym>' or 'event:<id>'.
    unit_key            text        NOT NULL,
    case_id             uuid,
    peer                text,
    mode                text,
    tier                smallint,
    referral            text,
    harm_level          text,
    involved            integer,
    staged_at           timestamptz NOT NULL DEFAULT now(),
    released_at         timestamptz,
    PRIMARY KEY (network_id, record_id)
);
CREATE INDEX programme_record_pending ON programme_record (network_id, occurred_at)
    WHERE released_at IS NULL;

-- When each network's records were last released: only records staged since then call for a new
-- release (records still waiting for their group to reach k join it).
CREATE TABLE release_state (
    network_id          text        NOT NULL PRIMARY KEY,
    last_release_at     timestamptz NOT NULL
);

-- What was published, kept for the CSV and Parquet exports (the same rows as the stream).
CREATE TABLE published_record (
    network_id          text        NOT NULL,
    record_id           uuid        NOT NULL,
    period              text        NOT NULL,
    released_at         timestamptz NOT NULL,
    record              jsonb       NOT NULL,
    PRIMARY KEY (network_id, record_id)
);
CREATE INDEX published_record_by_period ON published_record (network_id, period);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['support_case', 'session_record', 'referral_record', 'adverse_event',
                             'peer_certification', 'peer_surrogate', 'programme_record',
                             'release_state', 'published_record']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;

-- The release scheduler finds networks with records waiting (read only), then releases each
-- network inside its own tenant scope.
CREATE POLICY release_scheduler ON programme_record FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'releases');
