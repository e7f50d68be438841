-- Restaurants, their tables, the guests at them (sessions), API keys and the audit trail.
-- Times are ISO 8601 UTC text with milliseconds and a Z ("2026-11-25T19:04:05.123Z"),
-- so they sort and compare as text.

CREATE TABLE restaurant (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE
        CHECK (length(slug) BETWEEN 1 AND 63 AND slug NOT GLOB '*[^a-z0-9-]*' AND slug NOT GLOB '-*'),
    name TEXT NOT NULL CHECK (length(name) > 0),
    -- grows by one for every table a change touches; the live dashboard numbers its updates with it
    version INTEGER NOT NULL DEFAULT 0,
    -- per-restaurant overrides; NULL means the server's setting of the same name
    restore_window_minutes INTEGER CHECK (restore_window_minutes > 0),
    idle_warning_minutes INTEGER CHECK (idle_warning_minutes > 0),
    idle_alert_minutes INTEGER CHECK (idle_alert_minutes > 0),
    created_at TEXT NOT NULL
);

-- "table" is an SQL keyword, hence dining_table.
CREATE TABLE dining_table (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    label TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 40),
    seats INTEGER NOT NULL DEFAULT 4 CHECK (seats BETWEEN 1 AND 100),
    area TEXT NOT NULL DEFAULT 'Main room' CHECK (length(area) BETWEEN 1 AND 40),
    sort_order INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    qr_token TEXT NOT NULL UNIQUE,
    -- when a party last sat down here (opened or moved in); a restore needs none since its close
    seated_at TEXT,
    UNIQUE (restaurant_id, label)
);
CREATE INDEX dining_table_by_restaurant ON dining_table (restaurant_id, sort_order, id);

CREATE TABLE table_session (
    id INTEGER PRIMARY KEY,
    table_id INTEGER NOT NULL REFERENCES dining_table(id),
    state TEXT NOT NULL CHECK (state IN ('active', 'closed')),
    guest_count INTEGER CHECK (guest_count BETWEEN 1 AND 100),
    opened_at TEXT NOT NULL,
    last_activity_at TEXT NOT NULL,
    closed_at TEXT,
    CHECK ((state = 'active') = (closed_at IS NULL))
);
-- At most one party at a table: the database refuses a second active session.
CREATE UNIQUE INDEX one_active_session_per_table ON table_session (table_id) WHERE state = 'active';
CREATE INDEX table_session_by_table ON table_session (table_id, closed_at);

CREATE TABLE api_key (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    label TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    -- SHA-256 of the key; the key itself is shown once and never stored
    secret_hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_key_by_restaurant ON api_key (restaurant_id);

CREATE TABLE audit_event (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    -- the restaurant's version once the change was made
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    table_ids TEXT NOT NULL,  -- JSON array
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    before TEXT,  -- JSON: the touched tables (or key) before the change
    after TEXT    -- JSON: the same after it
);
CREATE INDEX audit_event_by_restaurant ON audit_event (restaurant_id, version);

CREATE TRIGGER audit_event_append_only_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

CREATE TRIGGER audit_event_append_only_delete BEFORE DELETE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;
