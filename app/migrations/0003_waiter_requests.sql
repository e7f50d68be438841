-- Guests calling a waiter or asking for the bill from the table's QR page.

CREATE TABLE waiter_request (
    id INTEGER PRIMARY KEY,
    table_id INTEGER NOT NULL REFERENCES dining_table(id),
    kind TEXT NOT NULL CHECK (kind IN ('call_waiter', 'ask_for_bill')),
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL))
);
-- One pending request of each kind per table: a second tap is refused, not counted twice.
CREATE UNIQUE INDEX one_pending_request_per_kind ON waiter_request (table_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX waiter_request_by_table ON waiter_request (table_id, resolved_at);
