-- The transparency log and the history the audit service replays.

-- The country a key was enrolled in (its site's), as the log records it.
ALTER TABLE agents ADD COLUMN country TEXT NOT NULL DEFAULT '';

-- Each accepted attestation's position in the log (NULL only for rows stored by version 1,
-- which the store appends to the log when it opens them).
ALTER TABLE attestations ADD COLUMN log_index INTEGER;
CREATE UNIQUE INDEX attestations_by_log_index ON attestations (log_index);

-- The log's leaves: the exact entry bytes hashed into the Merkle tree (proto_evidence::LogEntry).
CREATE TABLE log_entries (
    log_index INTEGER PRIMARY KEY CHECK (log_index >= 0),
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    key_id    BLOB,
    host_id   TEXT,
    entry     BLOB    NOT NULL
);
CREATE INDEX log_entries_by_kind ON log_entries (kind, key_id);

-- Every complete aligned subtree of the log: (level, idx) covers leaves
-- [idx << level, (idx + 1) << level). Level 0 holds the leaf hashes. Any root or proof
-- reads O(log n) of these rows.
CREATE TABLE log_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Tree heads the collector signed with its log key (the encoded signed envelope).
CREATE TABLE tree_heads (
    tree_size    INTEGER PRIMARY KEY,
    root         BLOB    NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    envelope     BLOB    NOT NULL
);
CREATE INDEX tree_heads_by_time ON tree_heads (timestamp_ms);

-- A host's state each time it changed (first attestation, another site, country, TPP or device
-- count, decommissioning): what past distributions and monthly reports replay.
CREATE TABLE host_changes (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    host_id  TEXT    NOT NULL,
    site_id  TEXT    NOT NULL,
    country  TEXT    NOT NULL,
    tpp      INTEGER NOT NULL,
    devices  INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('attested', 'decommissioned'))
);
CREATE INDEX host_changes_by_time ON host_changes (at_ms, id);

-- The states stored by version 1 are each host's first known change.
INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp, devices, kind)
SELECT last_issued_at_ms, host_id, site_id, country, tpp, devices, 'attested' FROM host_state;
