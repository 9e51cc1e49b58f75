-- Hearing replies: wrong numbers, replies waiting for a person, crisis alerts
-- that stay open until acknowledged, and coaches covering for each other.

-- When a reply said the phone is not the client's; NULL: the number is fine.
-- No SMS goes to it until a coach confirms it or the number changes.
ALTER TABLE clients ADD COLUMN phone_wrong_at INTEGER;

-- While a coach is away (until `away_until`), their backup gets their drafts,
-- replies, notices and crisis alerts; the backup also hears escalations.
ALTER TABLE coaches ADD COLUMN backup_coach_id INTEGER REFERENCES coaches (id);
ALTER TABLE coaches ADD COLUMN away_until INTEGER;

-- SQLite cannot change a CHECK constraint in place, so `inbound` is rebuilt
-- with `wrong_number` among its classes.
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
        CHECK (classification IN ('reply', 'opt_out', 'opt_in', 'help', 'crisis', 'wrong_number')),
    classes TEXT NOT NULL DEFAULT '',
    matched TEXT NOT NULL DEFAULT '[]',
    provider_id TEXT UNIQUE,
    -- 1 until a coach answers it, marks it handled, or records a contact.
    needs_reply INTEGER NOT NULL DEFAULT 0,
    handled_at INTEGER,
    handled_by INTEGER REFERENCES coaches (id),
    -- When the coach's "replies waiting" notice counted this reply.
    notified_at INTEGER,
    -- Crisis replies: when the coach's alert went out, or why it did not yet.
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
    answer TEXT
);
INSERT INTO inbound_new (id, received_at, channel, from_addr, to_addr, body, client_id,
    classification, classes, provider_id, needs_reply, handled_at, alerted_at, alert_error,
    acknowledged_at, resources_sent)
SELECT id, received_at, channel, from_addr, to_addr, body, client_id,
    classification, classification, provider_id,
    CASE WHEN handled_at IS NULL AND classification IN ('reply', 'crisis') THEN 1 ELSE 0 END,
    handled_at, alerted_at, alert_error, handled_at, resources_sent
FROM inbound;
DROP TABLE inbound;
ALTER TABLE inbound_new RENAME TO inbound;
CREATE INDEX inbound_client_id ON inbound (client_id);
CREATE INDEX inbound_from_addr ON inbound (from_addr);
CREATE INDEX inbound_needs_reply ON inbound (received_at) WHERE needs_reply = 1;
CREATE INDEX inbound_open_crisis ON inbound (received_at)
    WHERE classification = 'crisis' AND acknowledged_at IS NULL;
