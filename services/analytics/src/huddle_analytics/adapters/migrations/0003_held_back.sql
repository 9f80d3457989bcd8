-- release_state (0001) is no longer read: a record marks itself as considered instead.
-- Records a release held back (their group was still smaller than k) are marked, so that a new
-- release is due exactly when some record waits that no release has considered yet, however
-- late its transaction committed.
ALTER TABLE programme_record ADD COLUMN held_back_at timestamptz;
DROP INDEX programme_record_pending;
CREATE INDEX programme_record_pending ON programme_record (network_id, occurred_at)
    WHERE released_at IS NULL;
CREATE INDEX programme_record_unconsidered ON programme_record (network_id, occurred_at)
    WHERE released_at IS NULL AND held_back_at IS NULL;
