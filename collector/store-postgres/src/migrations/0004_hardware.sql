-- Hardware evidence (the SQLite store's version 5): each GPU's hardware identity (the canonical
-- string of its NVIDIA device certificate; empty when it has none verified) and when it was
-- last proven (0: never), and the part of each host change's counted TPP that is
-- hardware-attested. Everything stored before had no hardware evidence.
ALTER TABLE gpus ADD COLUMN hardware text NOT NULL DEFAULT '';
ALTER TABLE gpus ADD COLUMN hardware_at_ms bigint NOT NULL DEFAULT 0;

-- Inventories carry both too, parallel to the other arrays. A list without hardware evidence
-- keeps the hash it had (`codec::inventory_hash`), so the existing rows stay valid as they are.
ALTER TABLE inventories ADD COLUMN hardware text[];
ALTER TABLE inventories ADD COLUMN hardware_at_ms bigint[];
UPDATE inventories SET hardware = array_fill(''::text, ARRAY[cardinality(uuids)]),
    hardware_at_ms = array_fill(0::bigint, ARRAY[cardinality(uuids)]);
ALTER TABLE inventories ALTER COLUMN hardware SET NOT NULL;
ALTER TABLE inventories ALTER COLUMN hardware_at_ms SET NOT NULL;

ALTER TABLE host_changes ADD COLUMN hardware_tpp bigint NOT NULL DEFAULT 0;
