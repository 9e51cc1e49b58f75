-- PostgreSQL twin of migrations/sqlite/0001_initial.sql: same tables and columns;
-- only the integer types differ (BIGSERIAL ids, SMALLINT flags).
-- Timestamps are Unix seconds (UTC) in both backends, so that comparisons and
-- arithmetic are the same SQL everywhere. Flags are 0/1 integers for the same reason.

CREATE TABLE coaches (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT,
    role TEXT NOT NULL DEFAULT 'coach' CHECK (role IN ('coach', 'admin')),
    password_hash TEXT,
    -- IANA timezone the UI shows times in; NULL: defaults.timezone.
    timezone TEXT,
    active SMALLINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL,
    preferred_name TEXT,
    email TEXT,
    phone TEXT,
    preferred_channel TEXT NOT NULL CHECK (preferred_channel IN ('email', 'sms')),
    language TEXT NOT NULL,
    timezone TEXT NOT NULL,
    coach_id BIGINT NOT NULL REFERENCES coaches (id),
    consent_email SMALLINT NOT NULL DEFAULT 0,
    consent_sms SMALLINT NOT NULL DEFAULT 0,
    discreet SMALLINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'paused', 'hold', 'discharged')),
    opted_out_email_at BIGINT,
    opted_out_sms_at BIGINT,
    -- NULL until the first engagement event; quiet time then counts from created_at.
    last_engaged_at BIGINT,
    -- The earliest time detection needs to look at this client again; NULL while
    -- nothing can change without an outside event (an open message, a paused client,
    -- a finished episode). Keeps detection proportional to the work that is due.
    next_detect_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX clients_last_engaged_at ON clients (last_engaged_at);
CREATE INDEX clients_next_detect_at ON clients (next_detect_at) WHERE next_detect_at IS NOT NULL;
CREATE INDEX clients_coach_id ON clients (coach_id);
CREATE INDEX clients_phone ON clients (phone);

CREATE TABLE engagement_events (
    id BIGSERIAL PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    note TEXT,
    recorded_at BIGINT NOT NULL,
    UNIQUE (client_id, kind, occurred_at)
);

CREATE TABLE episodes (
    id BIGSERIAL PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    started_at BIGINT NOT NULL,
    -- The highest cadence step drafted in this episode.
    step BIGINT NOT NULL DEFAULT 0,
    closed_at BIGINT,
    close_reason TEXT,
    -- After the last step, a "reach out personally" task for the coach until this
    -- is set (a contact, a hold, or the coach dismissing it).
    outreach_done_at BIGINT
);
CREATE UNIQUE INDEX episodes_one_open_per_client ON episodes (client_id) WHERE closed_at IS NULL;

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id),
    coach_id BIGINT NOT NULL REFERENCES coaches (id),
    episode_id BIGINT NOT NULL REFERENCES episodes (id),
    step BIGINT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    html TEXT,
    template TEXT NOT NULL,
    template_hash TEXT NOT NULL,
    lint TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    approved_at BIGINT,
    approved_by BIGINT REFERENCES coaches (id),
    rejected_at BIGINT,
    reject_reason TEXT,
    sent_at BIGINT,
    -- When the message stopped counting as open: sent, rejected, expired, failed, cancelled.
    settled_at BIGINT,
    cancel_reason TEXT,
    -- Hidden from the queue until then; expiry counts from then too.
    snoozed_until BIGINT,
    edited SMALLINT NOT NULL DEFAULT 0,
    original_subject TEXT,
    original_body TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until BIGINT,
    -- RFC 5322 Message-ID, created with the draft and reused on every attempt.
    email_message_id TEXT,
    provider_message_id TEXT,
    -- The provider's latest delivery report (never moved backwards) and its error code.
    delivery_status TEXT,
    delivery_error TEXT,
    last_error TEXT,
    UNIQUE (episode_id, step)
);
CREATE INDEX messages_provider_message_id ON messages (provider_message_id);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'approved';
CREATE INDEX messages_sending ON messages (lease_until) WHERE status = 'sending';
CREATE INDEX messages_client_status ON messages (client_id, status);
CREATE INDEX messages_status_created ON messages (status, created_at);

-- Append-only. An `attempt` row is written when the attempt starts and completed
-- once with its outcome; `reconcile` rows record what the provider said about an
-- attempt in doubt, and `callback` rows its delivery reports. The app never
-- changes a row after that.
CREATE TABLE send_log (
    id BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    event TEXT NOT NULL DEFAULT 'attempt' CHECK (event IN ('attempt', 'reconcile', 'callback')),
    attempt BIGINT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome TEXT CHECK (outcome IN ('sent', 'retry', 'failed', 'in_doubt')),
    provider_id TEXT,
    delivery_status TEXT,
    code TEXT,
    error TEXT
);
CREATE UNIQUE INDEX send_log_one_row_per_attempt ON send_log (message_id, attempt) WHERE event = 'attempt';
CREATE INDEX send_log_started_at ON send_log (started_at);

CREATE TABLE inbound (
    id BIGSERIAL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    channel TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    to_addr TEXT,
    body TEXT NOT NULL,
    client_id BIGINT REFERENCES clients (id),
    classification TEXT NOT NULL
        CHECK (classification IN ('reply', 'opt_out', 'opt_in', 'help', 'crisis')),
    provider_id TEXT UNIQUE,
    handled_at BIGINT,
    -- Crisis replies: when the coach's alert went out, or why it did not yet.
    alerted_at BIGINT,
    alert_error TEXT,
    -- Whether the crisis resources message went out with the answer to this reply.
    resources_sent SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX inbound_client_id ON inbound (client_id);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_coach_id BIGINT REFERENCES coaches (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    client_id BIGINT REFERENCES clients (id),
    message_id BIGINT REFERENCES messages (id),
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Web sessions: only a SHA-256 of the cookie's token is kept. Each session has
-- its own CSRF token for the forms it renders.
CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    coach_id BIGINT NOT NULL REFERENCES coaches (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Failed logins by the email typed, whether or not a coach has it, so that a
-- lock says nothing about which accounts exist.
CREATE TABLE login_throttle (
    email TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    first_failed_at BIGINT NOT NULL,
    locked_until BIGINT
);

-- API bearer tokens: only a SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    coach_id BIGINT NOT NULL REFERENCES coaches (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- Small facts the process must remember between runs (the cadence fingerprint).
CREATE TABLE app_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
