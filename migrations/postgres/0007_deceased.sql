-- A reply may say the client has died: the class `deceased`, and the reason
-- a client is on hold or discharged when a reply or a coach gave one.
ALTER TABLE inbound DROP CONSTRAINT inbound_classification_check;
ALTER TABLE inbound ADD CONSTRAINT inbound_classification_check
    CHECK (classification IN
        ('reply', 'opt_out', 'opt_in', 'help', 'crisis', 'wrong_number', 'deceased'));
-- `reported_deceased`: a reply said so and the client is on hold until a
-- coach confirms or undoes it; `deceased`: a coach confirmed it (discharged).
ALTER TABLE clients ADD COLUMN status_reason TEXT
    CHECK (status_reason IN ('reported_deceased', 'deceased'));
