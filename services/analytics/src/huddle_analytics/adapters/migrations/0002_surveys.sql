-- Outcome surveys: anonymous but pairable. No respondent, token subject or exact time is kept:
-- only the month, the scores, and a hash of the random code the respondent alone holds.
CREATE TABLE survey_response (
    network_id          text        NOT NULL,
    response_id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    hospital_id         text        NOT NULL,
    programme           text        NOT NULL,
    instrument          text        NOT NULL,
    phase               text        NOT NULL CHECK (phase IN ('pre', 'post')),
    code_hash           bytea       NOT NULL,
    month               date        NOT NULL,
    measures            jsonb       NOT NULL,
    bands               jsonb       NOT NULL,
    PRIMARY KEY (network_id, response_id),
    UNIQUE (network_id, instrument, phase, code_hash)
);
CREATE INDEX survey_response_by_month ON survey_response (network_id, instrument, month);

ALTER TABLE survey_response ENABLE ROW LEVEL SECURITY;
ALTER TABLE survey_response FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON survey_response
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
