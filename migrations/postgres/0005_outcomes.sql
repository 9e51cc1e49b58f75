-- Outcomes: whether a reply was one bare keyword (STOP, HELP, START), which
-- is no reply for the reports; older rows are read from what was done then.
ALTER TABLE inbound ADD COLUMN keyword BIGINT NOT NULL DEFAULT 0;
UPDATE inbound SET keyword = 1
    WHERE needs_reply = 0 AND handled_at IS NULL AND automatic IS NULL
      AND classification IN ('opt_out', 'opt_in', 'help');

-- The template variant a message was drafted from (NULL: the step's own template).
ALTER TABLE messages ADD COLUMN variant TEXT;
