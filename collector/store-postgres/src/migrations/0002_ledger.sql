-- The ledger's books (the SQLite store's version 3): stores persist what the ledger decided
-- instead of deciding host state themselves.

-- An event's number for programs (a gap's missing count, a silence's start, ...): never parsed
-- back from its words.
ALTER TABLE events ADD COLUMN value bigint;

-- Whether each GPU of a host's current state counts there (another host may hold it, or the
-- host may not count). Everything stored before counted.
ALTER TABLE gpus ADD COLUMN counted boolean NOT NULL DEFAULT true;

-- Inventories carry the flag too, parallel to the other arrays. A list whose GPUs all count
-- keeps the hash it had (`codec::inventory_hash`), so the existing rows stay valid as they are.
ALTER TABLE inventories ADD COLUMN counted boolean[];
UPDATE inventories SET counted = array_fill(true, ARRAY[cardinality(uuids)]);
ALTER TABLE inventories ALTER COLUMN counted SET NOT NULL;

-- An enrolment token may re-bind one existing host (an administrator's explicit move or
-- re-key); plain tokens enrol new hosts only.
ALTER TABLE enroll_tokens ADD COLUMN rebind_host text;

-- Every enrolled host has a state row from its enrolment on (last_sequence 0: nothing attested
-- yet), so a host id that exists is known before its first attestation. A host enrolled under
-- several keys and never attested takes its first key, as the SQLite store's migration does.
-- The empty list's hash is `codec::inventory_hash(&[])`: SHA-256 of 'veu-inventory-1'.
INSERT INTO inventories (hash, uuids, serials, catalogue_ids, tpps, counted)
VALUES (sha256('veu-inventory-1'::bytea), '{}', '{}', '{}', '{}', '{}')
ON CONFLICT (hash) DO NOTHING;
INSERT INTO host_state (host_id, site_id, country, key_id, last_sequence, last_digest,
    last_issued_at_ms, last_received_at_ms, tpp, devices, inventory_id, decommissioned_at_ms)
SELECT DISTINCT ON (a.host_id) a.host_id, a.site_id, a.country, a.key_id, 0,
    decode(repeat('00', 32), 'hex'), 0, 0, 0, 0,
    (SELECT i.id FROM inventories i WHERE i.hash = sha256('veu-inventory-1'::bytea)), NULL
FROM agents a
ORDER BY a.host_id, a.enrolled_at_ms, a.key_id
ON CONFLICT (host_id) DO NOTHING;

-- Host changes are the ledger's, in its order and at its instants; a re-binding and a host
-- that stopped counting (e.g. a decommissioned host's late link) are kinds of their own.
ALTER TABLE host_changes DROP CONSTRAINT host_changes_kind_check;
ALTER TABLE host_changes ADD CONSTRAINT host_changes_kind_check
    CHECK (kind IN ('attested', 'decommissioned', 'rebound', 'stopped'));
