import { runService } from '@aoa/core';
import { explainPolicyError } from '@aoa/policy';
import { buildRevoker } from './app.js';
import { loadRevokerConfig } from './config.js';

await runService({
  name: 'revoker',
  loadConfig: loadRevokerConfig,
  start: (config, logger) => buildRevoker(config, { logger, defaultMetrics: true }).start(),
  explainStartupError: explainPolicyError,
});
