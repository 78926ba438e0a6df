-- The schema of the PostgreSQL store: the same tables as the SQLite store's (version 2 there),
-- in PostgreSQL types. Integers that the model holds as u64 are bigint; the store refuses values
-- above i64::MAX rather than wrap them. Text that is sorted or compared for order uses the "C"
-- collation, so it sorts by bytes as the model and SQLite do, whatever the database's locale.

CREATE TABLE agents (
    key_id         bytea  NOT NULL PRIMARY KEY CHECK (length(key_id) = 32),
    public_key     bytea  NOT NULL CHECK (length(public_key) = 32),
    host_id        text   NOT NULL,
    site_id        text   NOT NULL,
    country        text   NOT NULL,
    identity       text   NOT NULL,
    enrolled_at_ms bigint NOT NULL,
    revoked_at_ms  bigint
);

-- Distinct GPU lists, shared by every attestation and host state that reported the same one:
-- a host's inventory rarely changes. `hash` identifies a list (a unique index on the arrays
-- themselves would exceed a b-tree entry for large hosts).
CREATE TABLE inventories (
    id            bigint   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash          bytea    NOT NULL UNIQUE CHECK (length(hash) = 32),
    uuids         text[]   NOT NULL,
    serials       text[]   NOT NULL,
    catalogue_ids text[]   NOT NULL,
    tpps          bigint[] NOT NULL
);

CREATE TABLE attestations (
    id              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id          bytea   NOT NULL REFERENCES agents (key_id),
    sequence        bigint  NOT NULL CHECK (sequence >= 0),
    digest          bytea   NOT NULL,
    previous_digest bytea   NOT NULL,
    host_id         text    COLLATE "C" NOT NULL,
    site_id         text    NOT NULL,
    country         text    NOT NULL,
    issued_at_ms    bigint  NOT NULL,
    received_at_ms  bigint  NOT NULL,
    tpp             bigint  NOT NULL,
    devices         bigint  NOT NULL,
    simulated       boolean NOT NULL,
    gap_before      bigint  NOT NULL,
    fresh           boolean NOT NULL,
    inventory_id    bigint  NOT NULL REFERENCES inventories (id),
    -- The exact bytes received. Signed bytes of a few KiB: TOAST keeps them out of line.
    envelope        bytea   NOT NULL,
    -- The attestation's leaf in the transparency log.
    log_index       bigint  NOT NULL UNIQUE,
    UNIQUE (key_id, sequence)
);
CREATE INDEX attestations_by_received ON attestations (received_at_ms, key_id, sequence);
CREATE INDEX attestations_by_host ON attestations (host_id, received_at_ms, key_id, sequence);

-- The highest stored sequence per key, kept on insert so that startup reads one row per key.
CREATE TABLE chain_heads (
    key_id   bytea  NOT NULL PRIMARY KEY,
    sequence bigint NOT NULL,
    digest   bytea  NOT NULL
);

CREATE TABLE host_state (
    host_id              text   COLLATE "C" NOT NULL PRIMARY KEY,
    site_id              text   NOT NULL,
    country              text   NOT NULL,
    key_id               bytea  NOT NULL,
    last_sequence        bigint NOT NULL,
    last_digest          bytea  NOT NULL,
    last_issued_at_ms    bigint NOT NULL,
    last_received_at_ms  bigint NOT NULL,
    tpp                  bigint NOT NULL,
    devices              bigint NOT NULL,
    inventory_id         bigint NOT NULL REFERENCES inventories (id),
    decommissioned_at_ms bigint
);

-- The GPUs of each host's current state, one row each, for lookups by UUID or serial.
CREATE TABLE gpus (
    host_id      text    COLLATE "C" NOT NULL REFERENCES host_state (host_id),
    position     integer NOT NULL,
    uuid         text    NOT NULL,
    serial       text    NOT NULL,
    catalogue_id text    NOT NULL,
    tpp          bigint  NOT NULL,
    PRIMARY KEY (host_id, position)
);
CREATE INDEX gpus_by_uuid ON gpus (uuid);
CREATE INDEX gpus_by_serial ON gpus (serial);

CREATE TABLE events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms   bigint NOT NULL,
    kind    text   NOT NULL,
    host_id text,
    key_id  bytea,
    detail  text   NOT NULL
);
CREATE INDEX events_by_time ON events (at_ms, id);

CREATE TABLE rejections (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms    bigint NOT NULL,
    reason   text   COLLATE "C" NOT NULL,
    key_id   bytea,
    host_id  text,
    sequence bigint,
    peer     text   NOT NULL,
    detail   text   NOT NULL
);
CREATE INDEX rejections_by_time ON rejections (at_ms, id);

-- Kept with each insert, so counting never scans the rejections (which may be pruned later).
CREATE TABLE rejection_counts (
    reason text   COLLATE "C" NOT NULL PRIMARY KEY,
    count  bigint NOT NULL
);

CREATE TABLE enroll_tokens (
    token_hash    bytea  NOT NULL PRIMARY KEY,
    site_id       text   NOT NULL,
    created_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL,
    used_at_ms    bigint
);

-- The log's leaves: the exact entry bytes hashed into the Merkle tree (proto_evidence::LogEntry).
CREATE TABLE log_entries (
    log_index bigint NOT NULL PRIMARY KEY CHECK (log_index >= 0),
    at_ms     bigint NOT NULL,
    kind      text   NOT NULL,
    key_id    bytea,
    host_id   text,
    entry     bytea  NOT NULL
);
-- Enrolments, revocations and decommissionings, for the evidence export's key history.
CREATE INDEX log_entries_administrative ON log_entries (log_index) WHERE kind <> 'attestation';

-- Every complete aligned subtree of the log: (level, idx) covers leaves
-- [idx << level, (idx + 1) << level). Level 0 holds the leaf hashes. Any root or proof reads
-- O(log n) of these rows; so does rebuilding the frontier after another replica appended.
CREATE TABLE log_nodes (
    level integer NOT NULL CHECK (level >= 0),
    idx   bigint  NOT NULL CHECK (idx >= 0),
    hash  bytea   NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- The log's size: read and updated by every appending transaction while it holds the log's
-- advisory lock, so replicas append one unbroken sequence.
CREATE TABLE log_state (
    one  boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (one),
    size bigint  NOT NULL CHECK (size >= 0)
);
INSERT INTO log_state (one, size) VALUES (true, 0);

-- Tree heads the collector signed with its log key (the encoded signed envelope).
CREATE TABLE tree_heads (
    tree_size    bigint NOT NULL PRIMARY KEY,
    root         bytea  NOT NULL,
    timestamp_ms bigint NOT NULL,
    envelope     bytea  NOT NULL
);
CREATE INDEX tree_heads_by_time ON tree_heads (timestamp_ms);

-- A host's state each time it changed (first attestation, another site, country, TPP or device
-- count, decommissioning): what past distributions and monthly reports replay.
CREATE TABLE host_changes (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms   bigint NOT NULL,
    host_id text   NOT NULL,
    site_id text   NOT NULL,
    country text   NOT NULL,
    tpp     bigint NOT NULL,
    devices bigint NOT NULL,
    kind    text   NOT NULL CHECK (kind IN ('attested', 'decommissioned'))
);
CREATE INDEX host_changes_by_time ON host_changes (at_ms, id);
