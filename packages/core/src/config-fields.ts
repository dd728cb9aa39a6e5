import { z } from 'zod';
import { parseDurationSeconds, parseListen } from './config.js';

/**
 * A duration variable (`90s`, `15m`, `2h`, `30d`) parsed to seconds, with a default.
 *
 * @example
 * const Env = z.object({ AOA_REPLAY_WINDOW: durationField('5m') });
 */
export const durationField = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      try {
        return parseDurationSeconds(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });

/**
 * A `host:port` listen variable, with a default; port 0 asks for a free one.
 *
 * @example
 * const Env = z.object({ AOA_REVOKER_GRPC_LISTEN: listenField('127.0.0.1:7411') });
 */
export const listenField = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      try {
        return parseListen(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });
