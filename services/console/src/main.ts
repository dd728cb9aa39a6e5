import { runService } from '@aoa/core';
import { buildConsole } from './app.js';
import { loadConsoleConfig } from './config.js';

await runService({
  name: 'console',
  loadConfig: loadConsoleConfig,
  start: (config, logger) => buildConsole(config, { logger, defaultMetrics: true }).start(),
});
