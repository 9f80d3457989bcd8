-- Tier 1: after a qualifying event, each involved person's manager is prompted to check in,
-- and records that they did (when and how; never what was said).
CREATE TABLE tier_one_check_in (
    id            uuid        PRIMARY KEY,
    network_id    text        NOT NULL,
    hospital_id   text        NOT NULL,
    case_id       uuid        NOT NULL REFERENCES support_request (case_id) ON DELETE CASCADE,
    manager       text        NOT NULL,
    prompted_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    notified      boolean     NOT NULL DEFAULT false,
    checked_in_at timestamptz,
    mode          text
);
CREATE INDEX tier_one_by_manager ON tier_one_check_in (network_id, manager, checked_in_at);

ALTER TABLE tier_one_check_in ENABLE ROW LEVEL SECURITY;
ALTER TABLE tier_one_check_in FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tier_one_check_in
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
-- The prompt scheduler finds prompts not yet sent across networks (read only).
CREATE POLICY prompt_scheduler ON tier_one_check_in FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'prompts');
