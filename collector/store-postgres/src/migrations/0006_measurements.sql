-- Landmarks' measurements are log leaves of their own kind ('measurement', host_id set), read
-- back by time when a collector starts: an index of those leaves alone, so that read never
-- scans the log.
CREATE INDEX log_entries_measurements ON log_entries (at_ms, log_index)
    WHERE kind = 'measurement';

-- The administrative history (what an evidence export carries from before its range) holds
-- neither attestations nor measurements.
DROP INDEX log_entries_administrative;
CREATE INDEX log_entries_administrative ON log_entries (log_index)
    WHERE kind <> 'attestation' AND kind <> 'measurement';
