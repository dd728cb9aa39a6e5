export { type AuditorDeps, buildAuditor, CONSUMER, type RunningAuditor } from './app.js';
export { type AuditorConfig, AuditorEnv, loadAuditorConfig } from './config.js';
export { canonicalJson } from './domain/canonical.js';
export { type ChainRow, GENESIS_HASH, linkHash } from './domain/chain.js';
