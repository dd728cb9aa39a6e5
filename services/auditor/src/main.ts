import { ConfigError, createLogger } from '@aoa/core';
import { buildAuditor, type RunningAuditor } from './app.js';
import { loadAuditorConfig } from './config.js';

/** The auditor process: config -> logger -> app -> start -> signals. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadAuditorConfig>;
  try {
    config = loadAuditorConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'auditor', level: config.logLevel });
  let running: RunningAuditor;
  try {
    running = await buildAuditor(config, { logger, defaultMetrics: true }).start();
  } catch (error) {
    logger.fatal({ err: error }, 'auditor failed to start');
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await running.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

await main();
