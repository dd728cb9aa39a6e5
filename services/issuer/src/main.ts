import { ConfigError, createLogger } from '@aoa/core';
import { PolicyError } from '@aoa/policy';
import { buildIssuer } from './app.js';
import { loadIssuerConfig } from './config.js';

/** The issuer process: config -> logger -> app -> start -> signals. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadIssuerConfig>;
  try {
    config = loadIssuerConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'issuer', level: config.logLevel });
  let running: Awaited<ReturnType<ReturnType<typeof buildIssuer>['start']>>;
  try {
    running = await buildIssuer(config, { logger, defaultMetrics: true }).start();
  } catch (error) {
    if (error instanceof PolicyError) {
      console.error(`policy refused:\n  ${error.problems.join('\n  ')}`);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'issuer failed to start');
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
