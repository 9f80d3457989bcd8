-- The course catalogue of each network, its certification rule, and the cohorts that teach it:
-- enrolment and attendance per module, which certify a peer by themselves.
CREATE TABLE course_module (
    network_id  text             NOT NULL,
    code        text             NOT NULL,
    title       text             NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
    hours       double precision NOT NULL CHECK (hours BETWEEN 0.5 AND 40),
    delivery    text             NOT NULL CHECK (delivery IN ('in_person', 'online')),
    updated_at  timestamptz      NOT NULL,
    PRIMARY KEY (network_id, code)
);

-- One rule per network; without one, peers are certified by hand only.
CREATE TABLE certification_rule (
    network_id         text        PRIMARY KEY,
    required_modules   text[]      NOT NULL CHECK (cardinality(required_modules) >= 1),
    refresher_modules  text[]      NOT NULL CHECK (cardinality(refresher_modules) >= 1),
    validity_months    integer     NOT NULL CHECK (validity_months BETWEEN 1 AND 120),
    updated_at         timestamptz NOT NULL
);

CREATE TABLE cohort (
    id           uuid        PRIMARY KEY,
    network_id   text        NOT NULL,
    hospital_id  text        NOT NULL,
    label        text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    modules      text[]      NOT NULL CHECK (cardinality(modules) >= 1),
    created_at   timestamptz NOT NULL,
    CHECK (ends_at > starts_at),
    UNIQUE (network_id, id)
);
CREATE INDEX cohort_by_hospital ON cohort (network_id, hospital_id, starts_at);

CREATE TABLE enrolment (
    network_id    text        NOT NULL,
    cohort_id     uuid        NOT NULL,
    peer          text        NOT NULL,
    enrolled_at   timestamptz NOT NULL,
    completed_at  timestamptz,
    PRIMARY KEY (cohort_id, peer),
    FOREIGN KEY (network_id, cohort_id) REFERENCES cohort (network_id, id),
    FOREIGN KEY (network_id, peer) REFERENCES peer (network_id, pseudonym)
);
CREATE INDEX enrolment_by_peer ON enrolment (network_id, peer);

-- Attendance per module, once per enrolment: the newest attendance of each module counts.
CREATE TABLE attendance (
    network_id   text        NOT NULL,
    cohort_id    uuid        NOT NULL,
    peer         text        NOT NULL,
    module       text        NOT NULL,
    attended_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (cohort_id, peer, module),
    FOREIGN KEY (cohort_id, peer) REFERENCES enrolment (cohort_id, peer),
    FOREIGN KEY (network_id, module) REFERENCES course_module (network_id, code)
);
CREATE INDEX attendance_by_peer ON attendance (network_id, peer, attended_at);

ALTER TABLE course_module ENABLE ROW LEVEL SECURITY;
ALTER TABLE course_module FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON course_module
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE certification_rule ENABLE ROW LEVEL SECURITY;
ALTER TABLE certification_rule FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certification_rule
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE cohort ENABLE ROW LEVEL SECURITY;
ALTER TABLE cohort FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cohort
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE enrolment ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrolment FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON enrolment
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));

ALTER TABLE attendance ENABLE ROW LEVEL SECURITY;
ALTER TABLE attendance FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attendance
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
