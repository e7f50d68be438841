-- Reports (issue 19): what the floor did over time, kept by each change in its own transaction.

-- A stint: a party at one table, from when it sat there (seated, moved in, joined) to when it left it
-- (closed, moved on, split off). A party's turn is on its own session; its stints say which tables,
-- and so which areas, it filled and when. A restore opens again the stints its close ended.
-- Unlike the other tables' times, a stint's are milliseconds since 1970 (UTC): a report over months adds
-- up tens of thousands of them, and SQLite adds numbers far faster than it reads dates.
CREATE TABLE stint (
    id INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurant(id),
    party_id INTEGER NOT NULL REFERENCES table_session(id),  -- the party's own session
    table_id INTEGER NOT NULL REFERENCES dining_table(id),
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    CHECK (ended_ms IS NULL OR ended_ms >= started_ms)
);
CREATE UNIQUE INDEX one_open_stint_per_table ON stint (table_id) WHERE ended_ms IS NULL;
CREATE INDEX stint_by_restaurant ON stint (restaurant_id, started_ms);
CREATE INDEX stint_by_party ON stint (party_id);

-- The stints of the parties before this migration, from their sessions: a party that moved shows at the
-- table it ended at from its start (where it sat before is in the audit log only), a joined table from
-- its join (its session opened then) to its party's close.
INSERT INTO stint (restaurant_id, party_id, table_id, started_ms, ended_ms)
    SELECT t.restaurant_id, coalesce(s.joined_to, s.id), s.table_id,
           CAST(round((julianday(s.opened_at) - 2440587.5) * 86400000.0) AS INTEGER),
           CAST(round((julianday(s.closed_at) - 2440587.5) * 86400000.0) AS INTEGER)
    FROM table_session AS s JOIN dining_table AS t ON t.id = s.table_id
    ORDER BY s.id;

-- How many times a party's close was undone (restore_table): one party however often it comes back.
ALTER TABLE table_session ADD COLUMN restores INTEGER NOT NULL DEFAULT 0;
UPDATE table_session SET restores = (
    SELECT count(*) FROM audit_event
    WHERE action = 'restore_table' AND json_extract(after, '$[0].session.id') = table_session.id)
WHERE joined_to IS NULL;
-- Parties by when they sat down (a report reads a period's).
CREATE INDEX table_session_by_opening ON table_session (opened_at) WHERE joined_to IS NULL;

-- Each guest's call belongs to the party at the table when it was made (a moved party takes its calls
-- along: the table changes, the party does not). Earlier calls: the party seated there at the time.
ALTER TABLE waiter_request ADD COLUMN party_id INTEGER REFERENCES table_session(id);
-- How long a call waited to be claimed, and to be seen to by staff (not ended by its party leaving), in
-- milliseconds: kept when it happens, for the same reason as a stint's times.
ALTER TABLE waiter_request ADD COLUMN claim_ms INTEGER;
ALTER TABLE waiter_request ADD COLUMN resolve_ms INTEGER;
UPDATE waiter_request SET
    claim_ms = CAST(round((julianday(claimed_at) - julianday(created_at)) * 86400000.0) AS INTEGER),
    resolve_ms = CASE WHEN resolved_by != 'table closed'
                      THEN CAST(round((julianday(resolved_at) - julianday(created_at)) * 86400000.0) AS INTEGER) END;
UPDATE waiter_request SET party_id = (
    SELECT coalesce(s.joined_to, s.id) FROM table_session AS s
    WHERE s.table_id = waiter_request.table_id AND s.opened_at <= waiter_request.created_at
      AND (s.closed_at IS NULL OR s.closed_at >= waiter_request.created_at)
    ORDER BY s.opened_at DESC LIMIT 1);
-- A report reads a period's calls through their parties: everything it needs is in the index, so the calls'
-- rows themselves are not read (half the calls' share of a 90-day report).
CREATE INDEX waiter_request_by_party
    ON waiter_request (party_id, kind, claimed_by, resolved_by_key, resolved_by, claim_ms, resolve_ms);

-- A restaurant's own time zone for its reports (an IANA name); NULL means the server's (MAITRE_TIME_ZONE).
ALTER TABLE restaurant ADD COLUMN time_zone TEXT;
