-- A digest of each host's last observation without its times (the first 16 bytes of its
-- SHA-256, in hex): ingest reads the last observation back only for the hosts whose digest
-- changed. NULL for hosts last seen before: their observation is read back once.
ALTER TABLE hosts ADD COLUMN digest TEXT;
