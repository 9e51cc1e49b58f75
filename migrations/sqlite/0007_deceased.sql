-- no-transaction
-- A reply may say the client has died: the class `deceased`, and the reason
-- a client is on hold or discharged when a reply or a coach gave one.
--
-- SQLite cannot change a CHECK constraint in place, so `inbound` is rebuilt
-- the way SQLite documents (https://sqlite.org/lang_altertable.html, "other
-- kinds of table schema changes"): with foreign keys off, since `messages`
-- refers to it, in a transaction of its own.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE inbound_new (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    channel TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    to_addr TEXT,
    body TEXT NOT NULL,
    client_id INTEGER REFERENCES clients (id),
    -- The class that names the reply (the first by precedence); `classes`
    -- lists all of them, `matched` the rules that said so (JSON).
    classification TEXT NOT NULL
        CHECK (classification IN
            ('reply', 'opt_out', 'opt_in', 'help', 'crisis', 'wrong_number', 'deceased')),
    classes TEXT NOT NULL DEFAULT '',
    matched TEXT NOT NULL DEFAULT '[]',
    provider_id TEXT UNIQUE,
    -- 1 until a coach answers it, marks it handled, or records a contact.
    needs_reply INTEGER NOT NULL DEFAULT 0,
    handled_at INTEGER,
    handled_by INTEGER REFERENCES coaches (id),
    -- When the coach's "replies waiting" notice counted this reply.
    notified_at INTEGER,
    -- Crisis and death reports: when the coach's alert went out, or why it
    -- did not yet.
    alerted_at INTEGER,
    alert_error TEXT,
    -- Crisis replies stay open until someone says "I'm on it".
    acknowledged_at INTEGER,
    acknowledged_by INTEGER REFERENCES coaches (id),
    escalated_at INTEGER,
    escalations INTEGER NOT NULL DEFAULT 0,
    -- Whether the crisis resources message went out with the answer to this reply.
    resources_sent INTEGER NOT NULL DEFAULT 0,
    -- What reengage answered the sender with, if anything.
    answer TEXT,
    subject TEXT,
    automatic TEXT CHECK (automatic IN ('auto_reply', 'bounce')),
    unmatched_reason TEXT,
    keyword INTEGER NOT NULL DEFAULT 0
);
INSERT INTO inbound_new (id, received_at, channel, from_addr, to_addr, body, client_id,
    classification, classes, matched, provider_id, needs_reply, handled_at, handled_by,
    notified_at, alerted_at, alert_error, acknowledged_at, acknowledged_by, escalated_at,
    escalations, resources_sent, answer, subject, automatic, unmatched_reason, keyword)
SELECT id, received_at, channel, from_addr, to_addr, body, client_id,
    classification, classes, matched, provider_id, needs_reply, handled_at, handled_by,
    notified_at, alerted_at, alert_error, acknowledged_at, acknowledged_by, escalated_at,
    escalations, resources_sent, answer, subject, automatic, unmatched_reason, keyword
FROM inbound;
DROP TABLE inbound;
ALTER TABLE inbound_new RENAME TO inbound;
CREATE INDEX inbound_client_id ON inbound (client_id);
CREATE INDEX inbound_from_addr ON inbound (from_addr);
CREATE INDEX inbound_needs_reply ON inbound (received_at) WHERE needs_reply = 1;
CREATE INDEX inbound_open_crisis ON inbound (received_at)
    WHERE classification = 'crisis' AND acknowledged_at IS NULL;
CREATE INDEX inbound_client_received ON inbound (client_id, received_at);
-- `reported_deceased`: a reply said so and the client is on hold until a
-- coach confirms or undoes it; `deceased`: a coach confirmed it (discharged).
ALTER TABLE clients ADD COLUMN status_reason TEXT
    CHECK (status_reason IN ('reported_deceased', 'deceased'));
COMMIT;
PRAGMA foreign_keys = ON;
