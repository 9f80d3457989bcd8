-- A request's journey as its requester sees it, the hospital's crisis resources, and every
-- release of contact details to a peer (audited).
ALTER TABLE support_request
    ADD COLUMN assigned_peer text,
    ADD COLUMN closed_at     timestamptz;

CREATE TABLE request_event (
    id          bigserial   PRIMARY KEY,
    network_id  text        NOT NULL,
    case_id     uuid        NOT NULL REFERENCES support_request (case_id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    at          timestamptz NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX request_event_by_case ON request_event (case_id, at);

CREATE TABLE crisis_resource (
    network_id   text    NOT NULL,
    hospital_id  text    NOT NULL,
    position     integer NOT NULL,
    label        text    NOT NULL,
    how_to_reach text    NOT NULL,
    PRIMARY KEY (network_id, hospital_id, position)
);

CREATE TABLE contact_release (
    id          bigserial   PRIMARY KEY,
    network_id  text        NOT NULL,
    case_id     uuid        NOT NULL,
    peer        text        NOT NULL,
    released_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['request_event', 'crisis_resource', 'contact_release']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;

-- The retention scheduler finds closed cases across networks (read only), then purges each
-- case's contact details inside that case's own tenant scope.
CREATE POLICY retention_scheduler ON support_request FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'retention');
CREATE POLICY retention_scheduler ON contact_detail FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'retention');
