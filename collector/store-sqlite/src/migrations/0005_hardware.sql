-- Hardware evidence: each GPU's hardware identity (the canonical string of its NVIDIA device
-- certificate; empty when it has none verified) and when it was last proven (0: never), and
-- the part of each host change's counted TPP that is hardware-attested. Inventories written
-- from now on use GPU list format 3, which carries both per GPU; formats 1 and 2 are still
-- read, their GPUs without hardware evidence.
ALTER TABLE gpus ADD COLUMN hardware TEXT NOT NULL DEFAULT '';
ALTER TABLE gpus ADD COLUMN hardware_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE host_changes ADD COLUMN hardware_tpp INTEGER NOT NULL DEFAULT 0;
