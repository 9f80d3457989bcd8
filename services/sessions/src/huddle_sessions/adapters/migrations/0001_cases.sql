-- Support cases as the peer works them: when, how long, how; never what was said.
CREATE TABLE support_case (
    case_id          uuid        PRIMARY KEY,
    network_id       text        NOT NULL,
    hospital_id      text        NOT NULL,
    peer             text        NOT NULL,
    requester        text        NOT NULL,
    mode             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'open',
    opened_at        timestamptz NOT NULL,
    first_contact_by timestamptz,
    first_contact_at timestamptz,
    closed_at        timestamptz
);
CREATE INDEX support_case_by_peer ON support_case (network_id, peer, status);

CREATE TABLE contact (
    session_id        uuid        PRIMARY KEY,
    network_id        text        NOT NULL,
    case_id           uuid        NOT NULL REFERENCES support_case (case_id),
    peer              text        NOT NULL,
    started_at        timestamptz NOT NULL,
    duration_minutes  integer     NOT NULL,
    mode              text        NOT NULL,
    tier              integer     NOT NULL,
    participants      integer     NOT NULL,
    follow_up_planned boolean     NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE follow_up (
    id         bigserial   PRIMARY KEY,
    network_id text        NOT NULL,
    case_id    uuid        NOT NULL REFERENCES support_case (case_id),
    due_at     timestamptz NOT NULL,
    done_at    timestamptz,
    cancelled  boolean     NOT NULL DEFAULT false
);
CREATE INDEX follow_up_due ON follow_up (network_id, due_at) WHERE done_at IS NULL AND NOT cancelled;

CREATE TABLE referral (
    referral_id uuid        PRIMARY KEY,
    network_id  text        NOT NULL,
    case_id     uuid        NOT NULL REFERENCES support_case (case_id),
    resource    text        NOT NULL,
    urgency     text        NOT NULL,
    referred_by text        NOT NULL,
    made_at     timestamptz NOT NULL
);

-- Each hospital's tier-3 catalogue: services, not people (a help line, an EAP desk).
CREATE TABLE referral_resource (
    network_id   text NOT NULL,
    hospital_id  text NOT NULL,
    resource     text NOT NULL,
    label        text NOT NULL,
    how_to_reach text NOT NULL,
    PRIMARY KEY (network_id, hospital_id, resource)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['support_case', 'contact', 'follow_up', 'referral', 'referral_resource']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;
