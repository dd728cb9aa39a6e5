export { buildIssuer, type IssuerDeps, type RunningIssuer } from './app.js';
export { type IssuerConfig, IssuerEnv, loadIssuerConfig } from './config.js';
