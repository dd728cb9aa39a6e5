-- aoa auditor store, version 4: the scopes verifiers report requests actually needed (`aoa.usage.<env>.<app>`),
-- per app, environment and grant ('' for tokens minted by Delegate), for the unused-scope report. Usage is
-- advisory: it is not chained, and a lost report only makes a scope look unused.
CREATE TABLE scope_usage (
  env text NOT NULL,
  app text NOT NULL,
  grant_id text NOT NULL DEFAULT '',
  scope text NOT NULL,
  first_ms bigint NOT NULL,
  last_ms bigint NOT NULL,
  PRIMARY KEY (env, app, grant_id, scope)
);
