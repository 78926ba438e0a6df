-- The transparency log and the history the audit service replays.

-- The country a key was enrolled in (its site's), as the log records it.
ALTER TABLE agents ADD COLUMN country TEXT NOT NULL DEFAULT '';

-- Each accepted attestation's position in the log (NULL only for rows stored by version 1,
-- which the store appends to the log when it opens them). Not indexed: the log finds an
-- attestation by its row id (`log_entries.attestation_id`), which costs no index on ingest.
ALTER TABLE attestations ADD COLUMN log_index INTEGER;

-- The log's leaves: the exact entry bytes hashed into the Merkle tree (proto_evidence::LogEntry),
-- and for an attestation the row holding its envelope.
CREATE TABLE log_entries (
    log_index      INTEGER PRIMARY KEY CHECK (log_index >= 0),
    at_ms          INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    key_id         BLOB,
    host_id        TEXT,
    attestation_id INTEGER,
    entry          BLOB    NOT NULL
);
-- Enrolments, revocations and decommissionings (what an evidence export carries from before its
-- range); attestations, nearly every leaf, stay out of it.
CREATE INDEX log_entries_administrative ON log_entries (kind, key_id)
    WHERE kind <> 'attestation';

-- Every complete aligned subtree of the log above the leaves: (level, idx) covers leaves
-- [idx << level, (idx + 1) << level), level >= 1. A leaf's hash (level 0) is the hash of its
-- entry. Any root or proof reads O(log n) of these rows.
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
