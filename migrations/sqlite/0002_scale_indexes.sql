-- Indexes sized for a state-wide caseload.
--
-- Detection pages through due clients in (next_detect_at, id) order. With id in
-- the index, PostgreSQL reads a page straight off it and stops at the page's
-- end, instead of sorting every due client for every page (SQLite's index
-- carries the rowid already; the two stay alike).
DROP INDEX clients_next_detect_at;
CREATE INDEX clients_next_detect_at ON clients (next_detect_at, id) WHERE next_detect_at IS NOT NULL;

-- Only sent SMS have a provider id; drafts need no entry in this index.
DROP INDEX messages_provider_message_id;
CREATE INDEX messages_provider_message_id ON messages (provider_message_id) WHERE provider_message_id IS NOT NULL;
