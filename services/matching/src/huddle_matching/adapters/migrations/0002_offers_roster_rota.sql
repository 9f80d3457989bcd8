-- The matching state: the request's search, the peer roster projection, the on-call rota,
-- offers, hospital calendars and each network's policy.
ALTER TABLE support_request
    ADD COLUMN clinical_area    text,
    ADD COLUMN reporting_line   text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN involved         text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN status           text        NOT NULL DEFAULT 'searching',
    ADD COLUMN scope            text        NOT NULL DEFAULT 'hospital',
    ADD COLUMN first_contact_by timestamptz,
    ADD COLUMN first_offered_at timestamptz,
    ADD COLUMN matched_peer     text,
    ADD COLUMN matched_at       timestamptz,
    ADD COLUMN escalated_at     timestamptz,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX support_request_open ON support_request (network_id, hospital_id, status, requested_at);
CREATE INDEX support_request_event ON support_request (network_id, adverse_event_id, status);

CREATE TABLE peer (
    network_id      text        NOT NULL,
    pseudonym       text        NOT NULL,
    hospital_id     text        NOT NULL,
    unit_id         text        NOT NULL,
    discipline      text        NOT NULL,
    clinical_area   text,
    languages       text[]      NOT NULL DEFAULT '{}',
    gender          text,
    certified_until timestamptz NOT NULL,
    capacity        integer     NOT NULL DEFAULT 3 CHECK (capacity >= 0),
    active_cases    integer     NOT NULL DEFAULT 0 CHECK (active_cases >= 0),
    paused          boolean     NOT NULL DEFAULT false,
    last_matched_at timestamptz,
    PRIMARY KEY (network_id, pseudonym)
);

CREATE TABLE on_call_shift (
    id          bigserial   PRIMARY KEY,
    network_id  text        NOT NULL,
    hospital_id text        NOT NULL,
    peer        text        NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at)
);
CREATE INDEX on_call_shift_now ON on_call_shift (network_id, peer, starts_at, ends_at);

CREATE TABLE offer (
    offer_id    uuid        PRIMARY KEY,
    network_id  text        NOT NULL,
    case_id     uuid        NOT NULL REFERENCES support_request (case_id),
    peer        text        NOT NULL,
    score       numeric     NOT NULL,
    reasons     text[]      NOT NULL DEFAULT '{}',
    offered_at  timestamptz NOT NULL,
    respond_by  timestamptz NOT NULL,
    status      text        NOT NULL DEFAULT 'open',
    answered_at timestamptz
);
CREATE INDEX offer_due ON offer (respond_by) WHERE status = 'open';
CREATE INDEX offer_by_peer ON offer (network_id, peer, status);
CREATE UNIQUE INDEX one_open_offer_per_case ON offer (case_id) WHERE status = 'open';

CREATE TABLE hospital_calendar (
    network_id   text    NOT NULL,
    hospital_id  text    NOT NULL,
    time_zone    text    NOT NULL DEFAULT 'UTC',
    working_days integer[] NOT NULL DEFAULT '{0,1,2,3,4}',
    day_start    time    NOT NULL DEFAULT '00:00',
    day_end      time,
    holidays     date[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (network_id, hospital_id)
);

CREATE TABLE matching_policy (
    network_id                  text    PRIMARY KEY,
    urgent_first_contact_minutes numeric NOT NULL,
    routine_working_hours       numeric NOT NULL,
    urgent_offer_minutes        numeric NOT NULL,
    routine_offer_minutes       numeric NOT NULL,
    default_capacity            integer NOT NULL,
    updated_at                  timestamptz NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['peer', 'on_call_shift', 'offer', 'hospital_calendar', 'matching_policy']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;

-- The deadline scheduler works across networks, but may only read which offers and searches are
-- due (then it handles each inside that network's own tenant scope).
CREATE POLICY deadline_scheduler ON offer FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'deadlines');
CREATE POLICY deadline_scheduler ON support_request FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'deadlines');
