-- no-transaction
-- Conversations: email replies come in, and coaches answer from the thread.
-- `messages` is rebuilt (SQLite cannot drop NOT NULL in place), which needs
-- foreign keys off around the transaction, as SQLite's documentation says.
PRAGMA foreign_keys = OFF;
BEGIN;

-- Why the client's email address is not to be used, and since when: a hard
-- bounce (a 5.x.x DSN), or a reply saying it reaches the wrong person. NULL:
-- the address is fine. No email goes to it until it changes.
ALTER TABLE clients ADD COLUMN email_bad_at INTEGER;
ALTER TABLE clients ADD COLUMN email_bad_reason TEXT CHECK (email_bad_reason IN ('bounced', 'wrong_person'));

-- Email replies: the subject, what kind of automatic mail it was (an
-- `auto_reply`, or a `bounce`), and why a message matched no client.
ALTER TABLE inbound ADD COLUMN subject TEXT;
ALTER TABLE inbound ADD COLUMN automatic TEXT CHECK (automatic IN ('auto_reply', 'bounce'));
ALTER TABLE inbound ADD COLUMN unmatched_reason TEXT;

-- A coach's own message has no episode or step: `author_id` wrote (and
-- approved) it, and `answers_id` is the reply it answers, if any.
CREATE TABLE messages_new (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    coach_id INTEGER NOT NULL REFERENCES coaches (id),
    episode_id INTEGER REFERENCES episodes (id),
    step INTEGER,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    html TEXT,
    template TEXT NOT NULL,
    template_hash TEXT NOT NULL,
    lint TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    approved_at INTEGER,
    approved_by INTEGER REFERENCES coaches (id),
    rejected_at INTEGER,
    reject_reason TEXT,
    sent_at INTEGER,
    -- When the message stopped counting as open: sent, rejected, expired, failed, cancelled.
    settled_at INTEGER,
    cancel_reason TEXT,
    -- Hidden from the queue until then; expiry counts from then too.
    snoozed_until INTEGER,
    edited INTEGER NOT NULL DEFAULT 0,
    original_subject TEXT,
    original_body TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until INTEGER,
    -- RFC 5322 Message-ID, created with the draft and reused on every attempt.
    email_message_id TEXT,
    provider_message_id TEXT,
    -- The provider's latest delivery report (never moved backwards) and its error code.
    delivery_status TEXT,
    delivery_error TEXT,
    last_error TEXT,
    author_id INTEGER REFERENCES coaches (id),
    answers_id INTEGER REFERENCES inbound (id),
    -- The Message-ID an email answers (its In-Reply-To and References).
    email_in_reply_to TEXT,
    UNIQUE (episode_id, step),
    CHECK ((episode_id IS NULL) = (author_id IS NOT NULL))
);
INSERT INTO messages_new (id, client_id, coach_id, episode_id, step, channel, recipient, subject,
    body, html, template, template_hash, lint, status, created_at, approved_at, approved_by,
    rejected_at, reject_reason, sent_at, settled_at, cancel_reason, snoozed_until, edited,
    original_subject, original_body, attempts, next_attempt_at, lease_until, email_message_id,
    provider_message_id, delivery_status, delivery_error, last_error)
SELECT id, client_id, coach_id, episode_id, step, channel, recipient, subject,
    body, html, template, template_hash, lint, status, created_at, approved_at, approved_by,
    rejected_at, reject_reason, sent_at, settled_at, cancel_reason, snoozed_until, edited,
    original_subject, original_body, attempts, next_attempt_at, lease_until, email_message_id,
    provider_message_id, delivery_status, delivery_error, last_error
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_provider_message_id ON messages (provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'approved';
CREATE INDEX messages_sending ON messages (lease_until) WHERE status = 'sending';
CREATE INDEX messages_client_status ON messages (client_id, status);
CREATE INDEX messages_status_created ON messages (status, created_at);
-- Email replies are matched to what we sent by In-Reply-To and References.
CREATE INDEX messages_email_message_id ON messages (email_message_id)
    WHERE email_message_id IS NOT NULL;
CREATE INDEX inbound_client_received ON inbound (client_id, received_at);

PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
