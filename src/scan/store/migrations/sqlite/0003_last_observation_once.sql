-- A host's last observation is read from `observations` (its `seen_scan_id` and address),
-- not kept a second time in `hosts`: an ingest writes each host's JSON once.
ALTER TABLE hosts DROP COLUMN observation;
