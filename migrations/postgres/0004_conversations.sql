-- Conversations: email replies come in, and coaches answer from the thread.

-- Why the client's email address is not to be used, and since when: a hard
-- bounce (a 5.x.x DSN), or a reply saying it reaches the wrong person. NULL:
-- the address is fine. No email goes to it until it changes.
ALTER TABLE clients ADD COLUMN email_bad_at BIGINT;
ALTER TABLE clients ADD COLUMN email_bad_reason TEXT CHECK (email_bad_reason IN ('bounced', 'wrong_person'));

-- Email replies: the subject, what kind of automatic mail it was (an
-- `auto_reply`, or a `bounce`), and why a message matched no client.
ALTER TABLE inbound ADD COLUMN subject TEXT;
ALTER TABLE inbound ADD COLUMN automatic TEXT CHECK (automatic IN ('auto_reply', 'bounce'));
ALTER TABLE inbound ADD COLUMN unmatched_reason TEXT;

-- A coach's own message has no episode or step: `author_id` wrote (and
-- approved) it, and `answers_id` is the reply it answers, if any.
ALTER TABLE messages ALTER COLUMN episode_id DROP NOT NULL;
ALTER TABLE messages ALTER COLUMN step DROP NOT NULL;
ALTER TABLE messages ADD COLUMN author_id BIGINT REFERENCES coaches (id);
ALTER TABLE messages ADD COLUMN answers_id BIGINT REFERENCES inbound (id);
-- The Message-ID an email answers (its In-Reply-To and References).
ALTER TABLE messages ADD COLUMN email_in_reply_to TEXT;
ALTER TABLE messages ADD CONSTRAINT messages_author_or_episode
    CHECK ((episode_id IS NULL) = (author_id IS NOT NULL));

-- Email replies are matched to what we sent by In-Reply-To and References.
CREATE INDEX messages_email_message_id ON messages (email_message_id)
    WHERE email_message_id IS NOT NULL;
CREATE INDEX inbound_client_received ON inbound (client_id, received_at);
