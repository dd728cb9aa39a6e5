-- aoa auditor store, version 6: a message on aoa.audit.batch carries several events (a DelegateBatch's,
-- published together), and each is its own row: part 0 to parts-1 of its message's stream sequence.
-- Every row stored before this version is part 0 of a message of one event. A dead letter is kept per
-- event too, so one bad event of a batch message does not take its siblings out of the chain.
ALTER TABLE audit_events ADD COLUMN part integer NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN parts integer NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_part_check CHECK (part >= 0 AND part < parts);
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events ADD PRIMARY KEY (seq, part);
ALTER TABLE dead_letters ADD COLUMN part integer NOT NULL DEFAULT 0;
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_pkey;
ALTER TABLE dead_letters ADD PRIMARY KEY (seq, part);
