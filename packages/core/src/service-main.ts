import { ConfigError } from './config.js';
import { createLogger, type Logger } from './logger.js';

export interface ServiceMainOptions<C extends { logLevel: string }> {
  /** The service name, for logs. */
  name: string;
  /** Validates the environment; throws ConfigError with `KEY: problem` lines. */
  loadConfig(env: Record<string, string | undefined>): C;
  start(config: C, logger: Logger): Promise<{ stop(): Promise<void> }>;
  /** Lines to print for a startup failure the operator can fix (a refused policy), else undefined. */
  explainStartupError?(error: unknown): string | undefined;
}

/**
 * The whole of a service's `main.ts`: config -> logger -> start -> signals. A configuration problem
 * exits 2 with every `KEY: problem`; any other startup failure exits 1; SIGTERM or SIGINT stops
 * accepting, lets in-flight work finish, and exits 0.
 *
 * @example
 * await runService({ name: 'issuer', loadConfig: loadIssuerConfig, start: (c, logger) => buildIssuer(c, { logger }).start() });
 */
export async function runService<C extends { logLevel: string }>(
  options: ServiceMainOptions<C>,
): Promise<void> {
  let config: C;
  try {
    config = options.loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
  const logger = createLogger({ service: options.name, level: config.logLevel });
  let running: { stop(): Promise<void> };
  try {
    running = await options.start(config, logger);
  } catch (error) {
    const explained = options.explainStartupError?.(error);
    if (explained) {
      console.error(explained);
      process.exit(2);
    }
    logger.fatal({ err: error }, `${options.name} failed to start`);
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

/**
 * Runs a service's cleanup steps, last registered first (a composition root pushes one per resource
 * it opens), each at most once.
 */
export async function runCleanup(steps: Array<() => Promise<void> | void>): Promise<void> {
  for (const step of steps.splice(0).reverse()) await step();
}
