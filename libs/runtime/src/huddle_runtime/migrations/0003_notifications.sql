-- Notifications: the intent is written in the caller's transaction (exactly once, with the state
-- change that caused it); the dispatcher delivers it, records every try and closes it.
CREATE TABLE notification (
    id           uuid        PRIMARY KEY,
    network_id   text        NOT NULL,
    hospital_id  text,
    kind         text        NOT NULL,
    recipient    text        NOT NULL,
    -- Only a plain app path: the rendered text has no other free part.
    link         text        NOT NULL CHECK (link ~ '^/[A-Za-z0-9/_-]*$' AND length(link) <= 512),
    respond_by   timestamptz,
    -- [{"channel": "email", "sealed": "<Fernet token>"}, {"channel": "inbox"}, ...] in order.
    channels     jsonb       NOT NULL CHECK (jsonb_typeof(channels) = 'array'),
    mode         text        NOT NULL DEFAULT 'fallback' CHECK (mode IN ('fallback', 'all')),
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'delivered', 'failed')),
    failure      text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz
);
CREATE INDEX notification_pending ON notification (created_at) WHERE status = 'pending';
CREATE INDEX notification_by_recipient ON notification (network_id, recipient, created_at);

CREATE TABLE notification_delivery (
    network_id      text        NOT NULL,
    notification_id uuid        NOT NULL REFERENCES notification (id) ON DELETE CASCADE,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    channel         text        NOT NULL CHECK (channel IN ('webhook', 'email', 'inbox')),
    position        integer     NOT NULL,
    at              timestamptz NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    error           text,
    PRIMARY KEY (notification_id, attempt)
);

CREATE TABLE notification_inbox (
    network_id      text        NOT NULL,
    recipient       text        NOT NULL,
    notification_id uuid        PRIMARY KEY REFERENCES notification (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    read_at         timestamptz
);
CREATE INDEX notification_inbox_recipient
    ON notification_inbox (network_id, recipient, created_at DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notification', 'notification_delivery', 'notification_inbox']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;

-- The dispatcher finds pending work across networks, read-only; it then locks, delivers and
-- records each notification inside that notification's own tenant scope.
CREATE POLICY notification_dispatcher ON notification FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'notifications');
