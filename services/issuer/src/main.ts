import { runService } from '@aoa/core';
import { explainPolicyError } from '@aoa/policy';
import { buildIssuer } from './app.js';
import { loadIssuerConfig } from './config.js';

await runService({
  name: 'issuer',
  loadConfig: loadIssuerConfig,
  start: (config, logger) => buildIssuer(config, { logger, defaultMetrics: true }).start(),
  explainStartupError: explainPolicyError,
});
