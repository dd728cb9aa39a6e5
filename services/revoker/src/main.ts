import { ConfigError, createLogger } from '@aoa/core';
import { PolicyError } from '@aoa/policy';
import { buildRevoker, type RunningRevoker } from './app.js';
import { loadRevokerConfig } from './config.js';

/** The revoker process: config -> logger -> app -> start -> signals. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadRevokerConfig>;
  try {
    config = loadRevokerConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'revoker', level: config.logLevel });
  let running: RunningRevoker;
  try {
    running = await buildRevoker(config, { logger, defaultMetrics: true }).start();
  } catch (error) {
    if (error instanceof PolicyError) {
      console.error(`policy refused:\n  ${error.problems.join('\n  ')}`);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'revoker failed to start');
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
