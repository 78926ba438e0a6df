-- The first schema. Integers that the model holds as u64 are stored as INTEGER (signed 64-bit);
-- the store refuses values above i64::MAX rather than wrap them.

CREATE TABLE agents (
    key_id         BLOB    NOT NULL PRIMARY KEY CHECK (length(key_id) = 32),
    public_key     BLOB    NOT NULL CHECK (length(public_key) = 32),
    host_id        TEXT    NOT NULL,
    site_id        TEXT    NOT NULL,
    identity       TEXT    NOT NULL,
    enrolled_at_ms INTEGER NOT NULL,
    revoked_at_ms  INTEGER
) WITHOUT ROWID;

-- Distinct GPU inventories (the model's `gpus` list, encoded), shared by every attestation
-- that reported the same list: a host's inventory rarely changes, so each attestation row
-- carries an id instead of the list again.
CREATE TABLE inventories (
    id   INTEGER PRIMARY KEY,
    gpus BLOB    NOT NULL UNIQUE
);

-- A rowid table on purpose: envelopes (a few KiB) would bloat a WITHOUT ROWID b-tree.
CREATE TABLE attestations (
    id              INTEGER PRIMARY KEY,
    key_id          BLOB    NOT NULL REFERENCES agents (key_id),
    sequence        INTEGER NOT NULL CHECK (sequence >= 0),
    digest          BLOB    NOT NULL,
    previous_digest BLOB    NOT NULL,
    host_id         TEXT    NOT NULL,
    site_id         TEXT    NOT NULL,
    country         TEXT    NOT NULL,
    issued_at_ms    INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    tpp             INTEGER NOT NULL,
    devices         INTEGER NOT NULL,
    simulated       INTEGER NOT NULL,
    gap_before      INTEGER NOT NULL,
    fresh           INTEGER NOT NULL,
    inventory_id    INTEGER NOT NULL REFERENCES inventories (id),
    envelope        BLOB    NOT NULL,
    UNIQUE (key_id, sequence)
);
CREATE INDEX attestations_by_received ON attestations (received_at_ms, key_id, sequence);
CREATE INDEX attestations_by_host ON attestations (host_id, received_at_ms, key_id, sequence);

-- The highest stored sequence per key, kept on insert so that startup reads one row per key.
CREATE TABLE chain_heads (
    key_id   BLOB    NOT NULL PRIMARY KEY,
    sequence INTEGER NOT NULL,
    digest   BLOB    NOT NULL
) WITHOUT ROWID;

CREATE TABLE host_state (
    host_id              TEXT    NOT NULL PRIMARY KEY,
    site_id              TEXT    NOT NULL,
    country              TEXT    NOT NULL,
    key_id               BLOB    NOT NULL,
    last_sequence        INTEGER NOT NULL,
    last_digest          BLOB    NOT NULL,
    last_issued_at_ms    INTEGER NOT NULL,
    last_received_at_ms  INTEGER NOT NULL,
    tpp                  INTEGER NOT NULL,
    devices              INTEGER NOT NULL,
    inventory_id         INTEGER NOT NULL REFERENCES inventories (id),
    decommissioned_at_ms INTEGER
) WITHOUT ROWID;

-- The GPUs of each host's current state, one row each, for lookups by UUID or serial.
CREATE TABLE gpus (
    host_id      TEXT    NOT NULL REFERENCES host_state (host_id),
    position     INTEGER NOT NULL,
    uuid         TEXT    NOT NULL,
    serial       TEXT    NOT NULL,
    catalogue_id TEXT    NOT NULL,
    tpp          INTEGER NOT NULL,
    PRIMARY KEY (host_id, position)
) WITHOUT ROWID;
CREATE INDEX gpus_by_uuid ON gpus (uuid);
CREATE INDEX gpus_by_serial ON gpus (serial);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    host_id TEXT,
    key_id  BLOB,
    detail  TEXT    NOT NULL
);
CREATE INDEX events_by_time ON events (at_ms, id);

CREATE TABLE rejections (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    key_id   BLOB,
    host_id  TEXT,
    sequence INTEGER,
    peer     TEXT    NOT NULL,
    detail   TEXT    NOT NULL
);
CREATE INDEX rejections_by_time ON rejections (at_ms, id);

-- Kept with each insert, so counting never scans the rejections (which may be pruned later).
CREATE TABLE rejection_counts (
    reason TEXT    NOT NULL PRIMARY KEY,
    count  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE enroll_tokens (
    token_hash    BLOB    NOT NULL PRIMARY KEY,
    site_id       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
) WITHOUT ROWID;
