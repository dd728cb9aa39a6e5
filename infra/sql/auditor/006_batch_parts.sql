-- aoa auditor store, version 6: a message on aoa.audit.batch carries several events (a DelegateBatch's,
-- published together), and each is its own row, numbered by part within its message's stream
-- sequence. Every row stored before this version is part 0 of a message of one event.
ALTER TABLE audit_events ADD COLUMN part integer NOT NULL DEFAULT 0 CHECK (part >= 0);
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events ADD PRIMARY KEY (seq, part);
