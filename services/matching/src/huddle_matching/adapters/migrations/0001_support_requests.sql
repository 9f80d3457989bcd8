-- Support requests as matching has received them (the queue it will match peers from).
CREATE TABLE support_request (
    case_id           uuid        PRIMARY KEY,
    network_id        text        NOT NULL,
    hospital_id       text        NOT NULL,
    unit_id           text        NOT NULL,
    requester         text        NOT NULL,
    discipline        text        NOT NULL,
    origin            text        NOT NULL,
    urgency           text        NOT NULL,
    preferred_mode    text,
    preferences       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    adverse_event_id  uuid,
    requested_at      timestamptz NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

ALTER TABLE support_request ENABLE ROW LEVEL SECURITY;
ALTER TABLE support_request FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON support_request
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
