-- Waiters: a third role for keys, a name on every key, the sections waiters serve, and who
-- claimed and who resolved each guest's call, and when (for the time to claim and to resolve).

-- The role's CHECK gains 'waiter', and every key a name: the person or screen it stands for, shown
-- to staff (a waiter's first name to guests too). SQLite cannot change a CHECK, hence the rebuild
-- (foreign keys are off while migrating); a key made before names existed is named after its label.
CREATE TABLE api_key_new (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    label TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'waiter', 'viewer')),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
    -- SHA-256 of the key; the key itself is shown once and never stored
    secret_hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
INSERT INTO api_key_new (id, restaurant_id, label, role, name, secret_hash, created_at, revoked_at)
    SELECT id, restaurant_id, label, role, substr(label, 1, 40), secret_hash, created_at, revoked_at FROM api_key;
DROP TABLE api_key;
ALTER TABLE api_key_new RENAME TO api_key;
CREATE INDEX api_key_by_restaurant ON api_key (restaurant_id);

-- A waiter's section: whole areas, and single tables (a table's own assignment wins over its area's).
-- Each area and each table is in at most one waiter's section. The waiter is named, not keyed: a
-- waiter whose phone is replaced (a new key of the same name) keeps the section.
CREATE TABLE section (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    waiter TEXT NOT NULL CHECK (length(waiter) BETWEEN 1 AND 40),
    area TEXT,
    table_id INTEGER REFERENCES dining_table(id),
    CHECK ((area IS NULL) != (table_id IS NULL))
);
CREATE UNIQUE INDEX one_waiter_per_area ON section (restaurant_id, area) WHERE area IS NOT NULL;
CREATE UNIQUE INDEX one_waiter_per_table ON section (table_id) WHERE table_id IS NOT NULL;
CREATE INDEX section_by_waiter ON section (restaurant_id, waiter);

-- A call claimed ("On my way") and resolved ("Done"): when, and by which key (its name as shown then).
ALTER TABLE waiter_request ADD COLUMN claimed_at TEXT;
ALTER TABLE waiter_request ADD COLUMN claimed_by TEXT;
ALTER TABLE waiter_request ADD COLUMN claimed_by_key INTEGER REFERENCES api_key(id);
ALTER TABLE waiter_request ADD COLUMN resolved_by_key INTEGER REFERENCES api_key(id);
