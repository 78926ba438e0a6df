-- The ledger's books: stores persist what the ledger decided instead of deciding themselves.

-- An event's number for programs (a gap's missing count, a silence's start, ...): never parsed
-- back from its words.
ALTER TABLE events ADD COLUMN value INTEGER;

-- Whether each GPU of a host's current state counts there (another host may hold it).
ALTER TABLE gpus ADD COLUMN counted INTEGER NOT NULL DEFAULT 1;

-- An enrolment token may re-bind one existing host (an administrator's explicit move or
-- re-key); plain tokens enrol new hosts only.
ALTER TABLE enroll_tokens ADD COLUMN rebind_host TEXT;

-- Every enrolled host has a state row from its enrolment on (last_sequence 0: nothing
-- attested yet), so a host id that exists is known before its first attestation.
INSERT OR IGNORE INTO inventories (gpus) VALUES (X'02');
INSERT OR IGNORE INTO host_state (host_id, site_id, country, key_id, last_sequence, last_digest,
    last_issued_at_ms, last_received_at_ms, tpp, devices, inventory_id, decommissioned_at_ms)
SELECT host_id, site_id, country, key_id, 0, zeroblob(32), 0, 0, 0, 0,
       (SELECT id FROM inventories WHERE gpus = X'02'), NULL
FROM agents ORDER BY enrolled_at_ms;

-- Host changes are the ledger's, in its order and at its instants; a re-binding is a kind of
-- its own. (SQLite changes a CHECK only by rebuilding the table.)
CREATE TABLE host_changes_v3 (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    host_id  TEXT    NOT NULL,
    site_id  TEXT    NOT NULL,
    country  TEXT    NOT NULL,
    tpp      INTEGER NOT NULL,
    devices  INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('attested', 'decommissioned', 'rebound', 'stopped'))
);
INSERT INTO host_changes_v3 (id, at_ms, host_id, site_id, country, tpp, devices, kind)
SELECT id, at_ms, host_id, site_id, country, tpp, devices, kind FROM host_changes;
DROP TABLE host_changes;
ALTER TABLE host_changes_v3 RENAME TO host_changes;
CREATE INDEX host_changes_by_time ON host_changes (at_ms, id);
