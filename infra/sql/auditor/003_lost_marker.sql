-- aoa auditor store, version 3: a marker row for a range of stream sequences that JetStream discarded
-- (AOA_AUDIT's age or size limit) before the auditor stored them, e.g. after a long database outage.
-- One row, at the last lost sequence, keeps the chain linked; VerifyChain reports the range as lost.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_marker_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_marker_check CHECK (marker IN ('duplicate', 'dead_letter', 'lost'));
