-- Offers still unanswered halfway to their deadline remind the peer once.
CREATE TABLE offer_reminder (
    offer_id    uuid        PRIMARY KEY,
    network_id  text        NOT NULL,
    hospital_id text        NOT NULL,
    case_id     uuid        NOT NULL,
    peer        text        NOT NULL,
    remind_at   timestamptz NOT NULL,
    respond_by  timestamptz NOT NULL,
    done        boolean     NOT NULL DEFAULT false
);
CREATE INDEX offer_reminder_due ON offer_reminder (remind_at) WHERE NOT done;
ALTER TABLE offer_reminder ENABLE ROW LEVEL SECURITY;
ALTER TABLE offer_reminder FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON offer_reminder
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
CREATE POLICY reminder_scheduler ON offer_reminder FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'reminders');
