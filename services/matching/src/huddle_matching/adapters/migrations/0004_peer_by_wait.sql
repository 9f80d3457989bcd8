-- A decision reads, in each group of the request's hospital that shares a discipline (and
-- perhaps a clinical area) and a number of active cases, only the first eligible peer by fair
-- rotation: never matched first, then longest since the last match, then pseudonym as Python
-- compares it. These indexes yield each group in that order, so each read stops there; the
-- second also serves every query peer_by_tier served.
CREATE INDEX peer_by_wait ON peer (network_id, hospital_id, discipline, active_cases,
                                   last_matched_at NULLS FIRST, pseudonym COLLATE "C");
CREATE INDEX peer_by_area_and_wait ON peer (network_id, hospital_id, discipline, clinical_area,
                                            active_cases, last_matched_at NULLS FIRST,
                                            pseudonym COLLATE "C");
DROP INDEX peer_by_tier;
