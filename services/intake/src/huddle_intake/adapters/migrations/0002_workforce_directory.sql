-- The workforce directory, kept by SCIM 2.0 provisioning or a CSV import. A person is a pseudonym
-- (HMAC of their staff identifier); whatever identifies them is sealed by the service.
CREATE TABLE staff (
    network_id          text        NOT NULL,
    pseudonym           text        NOT NULL CHECK (pseudonym ~ '^p_[0-9a-f]{32}$'),
    hospital_id         text        NOT NULL,
    unit_id             text        NOT NULL,
    discipline          text        NOT NULL,
    clinical_area       text,
    manager_pseudonym   text        CHECK (manager_pseudonym ~ '^p_[0-9a-f]{32}$'),
    active              boolean     NOT NULL DEFAULT true,
    scim_id             uuid        NOT NULL UNIQUE,
    -- Keyed digests (HMAC with the network's secret): the SCIM filters look people up by them.
    user_name_digest    text        NOT NULL,
    external_id_digest  text,
    -- Sealed by the service: the record as provisioned (staff id, names, contact), the contact
    -- and the display name a peer may later be given.
    sealed_profile      bytea       NOT NULL,
    sealed_contact      bytea,
    sealed_name         bytea,
    -- SCIM DELETE: the id answers 404 from then on, the row stays for history (reporting lines).
    deprovisioned_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (network_id, pseudonym)
);
CREATE UNIQUE INDEX staff_user_name ON staff (network_id, user_name_digest)
    WHERE deprovisioned_at IS NULL;
CREATE INDEX staff_external_id ON staff (network_id, external_id_digest)
    WHERE external_id_digest IS NOT NULL;
CREATE INDEX staff_by_manager ON staff (network_id, manager_pseudonym);
CREATE INDEX staff_by_unit ON staff (network_id, hospital_id, unit_id);

-- Units of a hospital (SCIM Groups); a unit's name is not personal, so it is kept plain.
CREATE TABLE unit (
    network_id    text        NOT NULL,
    hospital_id   text        NOT NULL,
    unit_id       text        NOT NULL,
    display_name  text        NOT NULL,
    scim_id       uuid        NOT NULL UNIQUE,
    external_id   text,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (network_id, hospital_id, unit_id)
);

ALTER TABLE staff ENABLE ROW LEVEL SECURITY;
ALTER TABLE staff FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON staff
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE unit ENABLE ROW LEVEL SECURITY;
ALTER TABLE unit FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON unit
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
