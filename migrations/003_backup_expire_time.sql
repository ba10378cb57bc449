-- A pinned backup (`pgkeep set-backup --ttl/--expire-time`) is kept by retention until this time,
-- ISO-8601 UTC text like the other timestamps. NULL: not pinned. backup.json holds the same value
-- as expireTime, so `catalog rebuild` restores it.
ALTER TABLE backups ADD COLUMN expire_time TEXT;
