-- Team debriefs and recurring rounds: aggregates only (when, how long, how many came).
CREATE TABLE group_session (
    session_id       uuid        PRIMARY KEY,
    network_id       text        NOT NULL,
    hospital_id      text        NOT NULL,
    unit_id          text,
    format           text        NOT NULL,
    adverse_event_id uuid,
    facilitator      text,
    starts_at        timestamptz,
    duration_minutes integer     NOT NULL,
    recurrence       text        NOT NULL DEFAULT 'none',
    status           text        NOT NULL DEFAULT 'scheduled',
    participants     integer,
    held_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX one_debrief_per_event ON group_session (network_id, adverse_event_id)
    WHERE adverse_event_id IS NOT NULL;

ALTER TABLE group_session ENABLE ROW LEVEL SECURITY;
ALTER TABLE group_session FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON group_session
    USING (network_id = current_setting('huddle.network_id', true))
    WITH CHECK (network_id = current_setting('huddle.network_id', true));
