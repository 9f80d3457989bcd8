-- Each hospital's paging or SMS gateway: a signed webhook (its secret sealed by the service).
CREATE TABLE paging_gateway (
    network_id    text        NOT NULL,
    hospital_id   text        NOT NULL,
    url           text        NOT NULL,
    sealed_secret bytea       NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (network_id, hospital_id)
);
ALTER TABLE paging_gateway ENABLE ROW LEVEL SECURITY;
ALTER TABLE paging_gateway FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON paging_gateway
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
