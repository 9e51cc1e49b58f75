-- Hearing replies: wrong numbers, replies waiting for a person, crisis alerts
-- that stay open until acknowledged, and coaches covering for each other.

-- When a reply said the phone is not the client's; NULL: the number is fine.
-- No SMS goes to it until a coach confirms it or the number changes.
ALTER TABLE clients ADD COLUMN phone_wrong_at BIGINT;

-- While a coach is away (until `away_until`), their backup gets their drafts,
-- replies, notices and crisis alerts; the backup also hears escalations.
ALTER TABLE coaches ADD COLUMN backup_coach_id BIGINT REFERENCES coaches (id);
ALTER TABLE coaches ADD COLUMN away_until BIGINT;

ALTER TABLE inbound DROP CONSTRAINT inbound_classification_check;
ALTER TABLE inbound ADD CONSTRAINT inbound_classification_check
    CHECK (classification IN ('reply', 'opt_out', 'opt_in', 'help', 'crisis', 'wrong_number'));
-- The class that names the reply is the first by precedence; `classes` lists
-- all of them, `matched` the rules that said so (JSON).
ALTER TABLE inbound ADD COLUMN classes TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN matched TEXT NOT NULL DEFAULT '[]';
-- 1 until a coach answers it, marks it handled, or records a contact.
ALTER TABLE inbound ADD COLUMN needs_reply BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbound ADD COLUMN handled_by BIGINT REFERENCES coaches (id);
-- When the coach's "replies waiting" notice counted this reply.
ALTER TABLE inbound ADD COLUMN notified_at BIGINT;
-- Crisis replies stay open until someone says "I'm on it".
ALTER TABLE inbound ADD COLUMN acknowledged_at BIGINT;
ALTER TABLE inbound ADD COLUMN acknowledged_by BIGINT REFERENCES coaches (id);
ALTER TABLE inbound ADD COLUMN escalated_at BIGINT;
ALTER TABLE inbound ADD COLUMN escalations BIGINT NOT NULL DEFAULT 0;
-- What reengage answered the sender with, if anything.
ALTER TABLE inbound ADD COLUMN answer TEXT;
UPDATE inbound SET classes = classification, acknowledged_at = handled_at,
    needs_reply = CASE WHEN handled_at IS NULL AND classification IN ('reply', 'crisis') THEN 1 ELSE 0 END;
CREATE INDEX inbound_from_addr ON inbound (from_addr);
CREATE INDEX inbound_needs_reply ON inbound (received_at) WHERE needs_reply = 1;
CREATE INDEX inbound_open_crisis ON inbound (received_at)
    WHERE classification = 'crisis' AND acknowledged_at IS NULL;
