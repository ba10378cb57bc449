-- A merge writes a new generation of a backup's files beside the current one and switches to it
-- by rewriting backup.json; the catalog mirrors which generation is current.
ALTER TABLE backups ADD COLUMN generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0);
