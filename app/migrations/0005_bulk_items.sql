-- A bulk (several table changes in one message) is one audit event: `items` lists what was asked,
-- item by item, with each item's outcome (JSON array; NULL for every other event).
ALTER TABLE audit_event ADD COLUMN items TEXT;
