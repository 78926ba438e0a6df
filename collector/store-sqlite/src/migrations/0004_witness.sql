-- Witnesses' cosignatures on the log's checkpoints (C2SP tlog-cosignature), one per witness
-- and checkpoint size: what evidence bundles carry so that an auditor can require them.
CREATE TABLE cosignatures (
    tree_size      INTEGER NOT NULL,
    witness        TEXT    NOT NULL,
    line           TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tree_size, witness)
);
