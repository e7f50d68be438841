-- The floor's everyday moves: a party's note, tables joined to a party, tables removed from the floor.

-- A party's note ("birthday", "nut allergy"), shown on its cards.
ALTER TABLE table_session ADD COLUMN note TEXT CHECK (note IS NULL OR length(note) BETWEEN 1 AND 140);
-- A table joined to a party is a session of its own at that table, pointing at the party's session
-- (`joined_to`): the unique index on active sessions then keeps every table, the party's own and the
-- joined ones, in at most one active party. The party's guests, note and times are on its own session.
ALTER TABLE table_session ADD COLUMN joined_to INTEGER REFERENCES table_session(id);
CREATE INDEX table_session_by_party ON table_session (joined_to) WHERE joined_to IS NOT NULL;

-- A removed table leaves the floor but not the history: its sessions, calls and audit events keep
-- pointing at it. Its label may be given to a new table, so the label is unique among the tables
-- still on the floor only; SQLite cannot drop a UNIQUE constraint, hence the table is rebuilt
-- (https://www.sqlite.org/lang_altertable.html#otheralter; foreign keys are off while migrating).
CREATE TABLE dining_table_new (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    label TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 40),
    seats INTEGER NOT NULL DEFAULT 4 CHECK (seats BETWEEN 1 AND 100),
    area TEXT NOT NULL DEFAULT 'Main room' CHECK (length(area) BETWEEN 1 AND 40),
    sort_order INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    qr_token TEXT NOT NULL UNIQUE,
    seated_at TEXT,
    -- when the table left the floor; its QR code stops working then
    removed_at TEXT
);
INSERT INTO dining_table_new (id, restaurant_id, label, seats, area, sort_order, enabled, qr_token, seated_at)
    SELECT id, restaurant_id, label, seats, area, sort_order, enabled, qr_token, seated_at FROM dining_table;
DROP TABLE dining_table;
ALTER TABLE dining_table_new RENAME TO dining_table;
CREATE INDEX dining_table_by_restaurant ON dining_table (restaurant_id, sort_order, id) WHERE removed_at IS NULL;
CREATE UNIQUE INDEX one_label_per_floor ON dining_table (restaurant_id, label) WHERE removed_at IS NULL;
