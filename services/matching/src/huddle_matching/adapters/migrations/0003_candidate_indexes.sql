-- A decision reads one tier of the request's hospital (peers of one discipline, often of one
-- clinical area), then each candidate's open offers: each through its own index. The open
-- offers are found by peer alone because the offer policy's deadline scope is an OR.
CREATE INDEX peer_by_tier ON peer (network_id, hospital_id, discipline, clinical_area);
CREATE INDEX offer_open_by_peer ON offer (peer) WHERE status = 'open';
