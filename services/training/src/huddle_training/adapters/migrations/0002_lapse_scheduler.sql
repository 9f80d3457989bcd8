-- The lapse scheduler finds certified peers whose certification has ended across networks
-- (read only); it lapses each one inside that peer's own tenant scope.
CREATE POLICY lapse_scheduler ON peer FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'lapses');
CREATE POLICY lapse_scheduler ON certification FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'lapses');
