-- Repeated refusals from one peer are stored as one row per window with their count, so a
-- flood of refused input cannot write a row each; counts and reports sum `count`.
ALTER TABLE rejections ADD COLUMN count BIGINT NOT NULL DEFAULT 1 CHECK (count >= 1);
