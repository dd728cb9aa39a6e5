import { runService } from '@aoa/core';
import { explainPolicyError } from '@aoa/policy';
import { buildRotator } from './app.js';
import { loadRotatorConfig } from './config.js';

await runService({
  name: 'rotator',
  loadConfig: loadRotatorConfig,
  start: (config, logger) => buildRotator(config, { logger, defaultMetrics: true }).start(),
  explainStartupError: explainPolicyError,
});
