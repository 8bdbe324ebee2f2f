-- Lake format 2 (docs/storage.md, "Format versions"): the manifest records the format each
-- partition file is written in. Rows recorded before this migration describe format-1 files.
ALTER TABLE partitions ADD COLUMN format_version INTEGER NOT NULL DEFAULT 1;
