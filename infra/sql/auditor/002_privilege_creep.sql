-- aoa auditor store, version 2: privilege creep.

-- For each app and environment, everything ever granted to it: the baseline a new issuance is compared
-- with. Updated in the transaction that stores the issuance events (delegation.issued, grant.minted).
CREATE TABLE privilege_baselines (
  app             text NOT NULL,
  env             text NOT NULL,
  scopes          jsonb NOT NULL,
  audiences       jsonb NOT NULL,
  max_ttl_seconds integer NOT NULL,
  max_depth       integer NOT NULL,
  updated_seq     bigint NOT NULL,
  PRIMARY KEY (app, env)
);

-- The outbox of alert.privilege_creep events: written with the baseline change, published onto
-- AOA_AUDIT after the commit (and retried until acknowledged), so an alert is never lost.
CREATE TABLE creep_alerts (
  id           text PRIMARY KEY,
  source_seq   bigint NOT NULL,
  subject      text NOT NULL,
  data         jsonb NOT NULL,
  published_at timestamptz NULL
);
CREATE INDEX creep_alerts_unpublished ON creep_alerts (source_seq) WHERE published_at IS NULL;
