export { buildRevoker, OUTBOX_BUCKET, type RevokerDeps, type RunningRevoker } from './app.js';
export { loadRevokerConfig, type RevokerConfig, RevokerEnv } from './config.js';
export type { RevocationNotice } from './domain/revoke.js';
