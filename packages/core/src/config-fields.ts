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

/** An http(s) URL variable. */
export const httpUrlField = () => z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** The variables every service reads to reach NATS and to log. */
export const SERVICE_ENV = {
  NATS_URL: z.string().min(1, 'required'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD_FILE: z.string().optional(),
  AOA_SUBJECT_PREFIX: z.string().default('aoa'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** TLS certificate and key files for a service's listeners; check them with {@link checkTlsPair}. */
export const TLS_ENV = {
  AOA_TLS_CERT_FILE: z.string().optional(),
  AOA_TLS_KEY_FILE: z.string().optional(),
};

/** TLS needs both files or neither. */
export function checkTlsPair(
  env: { AOA_TLS_CERT_FILE?: string | undefined; AOA_TLS_KEY_FILE?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (Boolean(env.AOA_TLS_CERT_FILE) !== Boolean(env.AOA_TLS_KEY_FILE)) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_TLS_KEY_FILE'],
      message: 'TLS needs both AOA_TLS_CERT_FILE and AOA_TLS_KEY_FILE',
    });
  }
}
