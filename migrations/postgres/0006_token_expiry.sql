-- API tokens may expire; an expired token is refused like a revoked one.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
