-- Support requests as intake owns them: pseudonyms only; contact details live apart, sealed.
CREATE TABLE support_request (
    case_id         uuid        PRIMARY KEY,
    network_id      text        NOT NULL,
    hospital_id     text        NOT NULL,
    unit_id         text        NOT NULL,
    requester       text        NOT NULL,
    submitted_by    text        NOT NULL,
    discipline      text        NOT NULL,
    origin          text        NOT NULL,
    urgency         text        NOT NULL,
    preferred_mode  text,
    preferences     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        NOT NULL DEFAULT 'requested',
    requested_at    timestamptz NOT NULL
);
CREATE INDEX support_request_by_requester ON support_request (network_id, requester);

-- Contact details are encrypted by the service before they reach the database.
CREATE TABLE contact_detail (
    case_id     uuid        PRIMARY KEY REFERENCES support_request (case_id) ON DELETE CASCADE,
    network_id  text        NOT NULL,
    sealed      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

ALTER TABLE support_request ENABLE ROW LEVEL SECURITY;
ALTER TABLE support_request FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON support_request
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE contact_detail ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_detail FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_detail
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
