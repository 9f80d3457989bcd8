-- Published results, materialised. Only closed months are published, so a result is a pure
-- function of the caller's scope, the query, the last closed month and the rows of closed months.
-- Each network has a data version that moves, in the writing transaction, only when a row a
-- closed month's results read changes (a late event, a late survey form); results are stored
-- under (last closed month, data version) and read back while both still hold.

CREATE TABLE result_version (
    network_id          text        NOT NULL PRIMARY KEY,
    data_version        bigint      NOT NULL DEFAULT 0,
    changed_at          timestamptz NOT NULL DEFAULT now(),
    -- What the warmer last precomputed in full: (closed month, data version).
    warmed_through      date,
    warmed_version      bigint
);

CREATE TABLE published_result (
    network_id          text        NOT NULL,
    -- 'network', or 'hospital:<id>' for a coordinator's hospital.
    scope               text        NOT NULL,
    -- The endpoint and every parameter that shapes it (year, breakdown, k, code digest).
    query_key           text        NOT NULL,
    -- The last closed month (its first day) when the result was computed.
    closed_through      date        NOT NULL,
    data_version        bigint      NOT NULL,
    -- The response exactly as sent (json keeps the bytes; nothing queries inside it).
    body                json        NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (network_id, scope, query_key, closed_through, data_version)
);

-- A coordinator's results read one hospital's rows, not the network's whole year.
CREATE INDEX support_case_by_hospital ON support_case (network_id, hospital_id, requested_at);
CREATE INDEX session_record_by_hospital ON session_record (network_id, hospital_id, started_at);
CREATE INDEX support_case_by_peer ON support_case (network_id, peer, matched_at)
    WHERE peer IS NOT NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['result_version', 'published_result']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (network_id = current_setting('huddle.network_id', true))
            WITH CHECK (network_id = current_setting('huddle.network_id', true))$p$, t);
    END LOOP;
END $$;

-- The warmer finds networks whose results are stale (read only), then warms each network
-- inside its own tenant scope.
CREATE POLICY results_warmer ON result_version FOR SELECT
    USING (current_setting('huddle.system_scope', true) = 'results');

-- Has the month of this instant ended? Counted from the end of the month, before the release's
-- grace period (a few needless bumps in the grace hours), and ten minutes early, so that a
-- transaction still in flight as a month ends has bumped the version already. It calls built-ins
-- only (pg_catalog comes first on any path), so it needs no search path and stays inlinable.
CREATE FUNCTION result_month_ended(moment timestamptz) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT moment <= date_trunc('month', clock_timestamp() + interval '10 minutes', 'UTC')
$$;

-- Every function below runs with the service's schema as its search path (the migration's, fixed
-- at creation), whatever the path of the session whose write fires it.

-- Once per network and transaction: a backfill of late rows moves the version once.
CREATE FUNCTION bump_result_version(network text) RETURNS void LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    bumped text := coalesce(current_setting('huddle.results_bumped', true), '');
BEGIN
    IF position(',' || network || ',' IN bumped) > 0 THEN
        RETURN;
    END IF;
    INSERT INTO result_version AS v (network_id, data_version) VALUES (network, 1)
        ON CONFLICT (network_id)
        DO UPDATE SET data_version = v.data_version + 1, changed_at = now();
    PERFORM set_config('huddle.results_bumped', bumped || ',' || network || ',', true);
END $$;

-- A case counts in the month it was requested (requests, response times) and the month it was
-- matched (referral rate, peer load); coverage reads it through its adverse event's month.
CREATE FUNCTION support_case_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    old_row support_case;
    new_row support_case;
BEGIN
    old_row := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
    new_row := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    IF result_month_ended(least(old_row.requested_at, old_row.matched_at,
                                new_row.requested_at, new_row.matched_at))
       OR EXISTS (SELECT 1 FROM adverse_event e
                   WHERE e.network_id = new_row.network_id
                     AND e.adverse_event_id IN (old_row.adverse_event_id, new_row.adverse_event_id)
                     AND result_month_ended(e.reported_at)) THEN
        PERFORM bump_result_version(new_row.network_id);
    END IF;
    RETURN NULL;
END $$;

-- A session counts in its own month, and keeps the follow-up an earlier session of its case
-- planned, whatever that one's month.
CREATE FUNCTION session_record_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    changed session_record;
BEGIN
    changed := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    IF result_month_ended(changed.started_at)
       OR (TG_OP = 'UPDATE' AND result_month_ended(OLD.started_at))
       OR EXISTS (SELECT 1 FROM session_record s
                   WHERE s.network_id = changed.network_id AND s.case_id = changed.case_id
                     AND s.follow_up_planned AND result_month_ended(s.started_at)) THEN
        PERFORM bump_result_version(changed.network_id);
    END IF;
    RETURN NULL;
END $$;

-- Rows read at one instant each: the referral's, the adverse event's, the survey answer's month.
CREATE FUNCTION referral_record_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND result_month_ended(OLD.made_at)
       OR TG_OP <> 'DELETE' AND result_month_ended(NEW.made_at) THEN
        PERFORM bump_result_version(coalesce(NEW.network_id, OLD.network_id));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION adverse_event_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND result_month_ended(OLD.reported_at)
       OR TG_OP <> 'DELETE' AND result_month_ended(NEW.reported_at) THEN
        PERFORM bump_result_version(coalesce(NEW.network_id, OLD.network_id));
    END IF;
    RETURN NULL;
END $$;

-- An answer's month is a date: the month has ended when its last instant has.
CREATE FUNCTION survey_response_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND result_month_ended(
            (OLD.month + interval '1 month' - interval '1 microsecond') AT TIME ZONE 'UTC')
       OR TG_OP <> 'DELETE' AND result_month_ended(
            (NEW.month + interval '1 month' - interval '1 microsecond') AT TIME ZONE 'UTC') THEN
        PERFORM bump_result_version(coalesce(NEW.network_id, OLD.network_id));
    END IF;
    RETURN NULL;
END $$;

-- A certification counts at every closed month's end between its start and its lapse. A lapse
-- alone changes the months from the earlier of its old and new instants on: a lapse now of a
-- certification of years ago changes no closed month.
CREATE FUNCTION certification_period_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    old_row certification_period;
    new_row certification_period;
    changed_from timestamptz;
BEGIN
    old_row := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
    new_row := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    IF TG_OP = 'UPDATE'
       AND (old_row.network_id, old_row.peer, old_row.hospital_id, old_row.discipline,
            old_row.certified_at, old_row.valid_until)
           IS NOT DISTINCT FROM
           (new_row.network_id, new_row.peer, new_row.hospital_id, new_row.discipline,
            new_row.certified_at, new_row.valid_until) THEN
        changed_from := least(old_row.lapsed_at, new_row.lapsed_at);
    ELSE
        changed_from := least(old_row.certified_at, old_row.lapsed_at,
                              new_row.certified_at, new_row.lapsed_at);
    END IF;
    IF result_month_ended(changed_from) THEN
        PERFORM bump_result_version(new_row.network_id);
    END IF;
    RETURN NULL;
END $$;

-- Updates that leave every column a result reads as it was (an offer counted, a case closed)
-- change no published result.
CREATE TRIGGER results_read_it AFTER INSERT OR DELETE ON support_case
    FOR EACH ROW EXECUTE FUNCTION support_case_changed();
CREATE TRIGGER results_read_it_updated AFTER UPDATE ON support_case
    FOR EACH ROW
    WHEN ((OLD.hospital_id, OLD.discipline, OLD.clinical_area, OLD.origin, OLD.urgency,
           OLD.adverse_event_id, OLD.requested_at, OLD.first_offered_at, OLD.matched_at, OLD.peer,
           OLD.respond_by, OLD.first_contact_at, OLD.withdrawn_at, OLD.tier, OLD.referral)
          IS DISTINCT FROM
          (NEW.hospital_id, NEW.discipline, NEW.clinical_area, NEW.origin, NEW.urgency,
           NEW.adverse_event_id, NEW.requested_at, NEW.first_offered_at, NEW.matched_at, NEW.peer,
           NEW.respond_by, NEW.first_contact_at, NEW.withdrawn_at, NEW.tier, NEW.referral))
    EXECUTE FUNCTION support_case_changed();
CREATE TRIGGER results_read_it AFTER INSERT OR UPDATE OR DELETE ON session_record
    FOR EACH ROW EXECUTE FUNCTION session_record_changed();
CREATE TRIGGER results_read_it AFTER INSERT OR UPDATE OR DELETE ON referral_record
    FOR EACH ROW EXECUTE FUNCTION referral_record_changed();
CREATE TRIGGER results_read_it AFTER INSERT OR UPDATE OR DELETE ON adverse_event
    FOR EACH ROW EXECUTE FUNCTION adverse_event_changed();
CREATE TRIGGER results_read_it AFTER INSERT OR UPDATE OR DELETE ON survey_response
    FOR EACH ROW EXECUTE FUNCTION survey_response_changed();
CREATE TRIGGER results_read_it AFTER INSERT OR UPDATE OR DELETE ON certification_period
    FOR EACH ROW EXECUTE FUNCTION certification_period_changed();
