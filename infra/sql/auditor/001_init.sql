-- aoa auditor store, version 1. Applied by the auditor at start (table schema_migrations); the same
-- SQL runs on PostgreSQL (production) and PGlite (embedded, development).

-- One row per JetStream stream sequence of AOA_AUDIT: an event, or a marker (a late duplicate, a
-- dead-lettered message) so that a gap in seq always means a deleted row.
CREATE TABLE audit_events (
  seq       bigint PRIMARY KEY,
  id        text UNIQUE,
  type      text NOT NULL,
  time      timestamptz NOT NULL,
  source    text NOT NULL,
  subject   text NOT NULL,
  data      jsonb NOT NULL,
  prev_hash text NOT NULL,
  hash      text NOT NULL,
  marker    text NULL CHECK (marker IN ('duplicate', 'dead_letter'))
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_type_time ON audit_events (type, time);
CREATE INDEX audit_events_subject ON audit_events (subject);
CREATE INDEX audit_events_jti ON audit_events ((data->>'jti'));
CREATE INDEX audit_events_parent_jti ON audit_events ((data->>'parent_jti'));

-- Messages that could not be stored as events, with the reason; each also has a marker row.
CREATE TABLE dead_letters (
  seq         bigint PRIMARY KEY,
  nats_subject text NOT NULL,
  reason      text NOT NULL,
  raw         bytea NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

-- Signed chain heads; the copies in the AOA_AUDIT_CHECKPOINTS stream are the ones VerifyChain trusts.
CREATE TABLE checkpoints (
  seq        bigint PRIMARY KEY,
  hash       text NOT NULL,
  time       timestamptz NOT NULL,
  public_key text NOT NULL,
  signature  text NOT NULL
);
