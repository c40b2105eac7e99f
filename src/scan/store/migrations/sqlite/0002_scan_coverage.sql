-- Which hosts each scan covered (its group's targets and exclusions when it was ingested):
-- a host is compared only with scans that covered it. NULL for scans ingested before.
ALTER TABLE scans ADD COLUMN coverage TEXT;
