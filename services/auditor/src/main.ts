import { runService } from '@aoa/core';
import { buildAuditor } from './app.js';
import { loadAuditorConfig } from './config.js';

await runService({
  name: 'auditor',
  loadConfig: loadAuditorConfig,
  start: (config, logger) => buildAuditor(config, { logger, defaultMetrics: true }).start(),
});
