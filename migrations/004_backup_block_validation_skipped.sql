-- A backup taken with --skip-block-validation holds pages as they were read, unjudged; a later
-- `validate` then judges no page of it either (docs/architecture.md, "Validate"). 1: skipped.
-- backup.json holds the same as blockValidationSkipped, so `catalog rebuild` restores it.
ALTER TABLE backups ADD COLUMN block_validation_skipped INTEGER NOT NULL DEFAULT 0;
