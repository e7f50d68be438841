-- Sign-in sessions of the dashboard. The browser holds a random session id in a cookie;
-- the database holds only its SHA-256, so a copy of the file signs nobody in.

CREATE TABLE login_session (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    key_id INTEGER NOT NULL REFERENCES api_key(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX login_session_by_key ON login_session (key_id);
