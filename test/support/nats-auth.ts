import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';

/** The server configuration with the aoa users of `infra/nats/auth.conf`. */
export const AUTH_CONFIG = fileURLToPath(new URL('../../infra/nats/nats-auth.conf', import.meta.url));

/** The APPS account's JetStream API as the services' account imports it in auth.conf. */
export const APPS_API = '$JS.apps.API';

const USERS = {
  issuer: 'AOA_NATS_ISSUER_PASSWORD',
  revoker: 'AOA_NATS_REVOKER_PASSWORD',
  rotator: 'AOA_NATS_ROTATOR_PASSWORD',
  auditor: 'AOA_NATS_AUDITOR_PASSWORD',
  'verifier-dashboards-api': 'AOA_NATS_VERIFIER_PASSWORD',
  'agent-prod-dashboards-dash-1': 'AOA_NATS_AGENT_PASSWORD',
} as const;

export type NatsUser = keyof typeof USERS;

/** Fresh passwords for every user of auth.conf, and password files for the services' `NATS_PASSWORD_FILE`. */
export interface NatsCredentials {
  password(user: NatsUser): string;
  /** `NATS_USER`, `NATS_PASSWORD_FILE` (and `AOA_NATS_APPS_API`) for a service connecting as `user`. */
  serviceEnv(user: NatsUser): Record<string, string>;
  remove(): Promise<void>;
}

/**
 * Generates the passwords and puts them in this process's environment, where the nats-server it
 * spawns resolves them; call before starting the server.
 */
export async function natsCredentials(): Promise<NatsCredentials> {
  const dir = await mkdtemp(join(tmpdir(), 'aoa-nats-auth-'));
  const passwords = new Map<NatsUser, string>();
  for (const [user, variable] of Object.entries(USERS) as Array<[NatsUser, string]>) {
    // nats-server parses a variable's value as a config token: a password must not read as a number.
    const value = `p${randomBytes(12).toString('hex')}`;
    passwords.set(user, value);
    process.env[variable] = value;
    await writeFile(join(dir, user), value, { mode: 0o600 });
  }
  const password = (user: NatsUser): string => passwords.get(user) as string;
  return {
    password,
    serviceEnv: (user) => ({
      NATS_USER: user,
      NATS_PASSWORD_FILE: join(dir, user),
      // The issuer and the rotator keep the verifiers' and agents' mirrors in the APPS account.
      ...(user === 'issuer' || user === 'rotator' ? { AOA_NATS_APPS_API: APPS_API } : {}),
    }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Whether the server refused a subscription: it closes it and reports a permissions violation. */
export async function subscriptionRefused(nc: NatsConnection, subject: string): Promise<boolean> {
  const sub = nc.subscribe(subject);
  const closed = sub.closed.then(
    () => true,
    () => true,
  );
  const stillOpen = nc
    .flush()
    .then(() => new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)));
  const refused = await Promise.race([closed, stillOpen]);
  sub.unsubscribe();
  return refused;
}

/** Every permissions violation the server reports to `nc` from now on, as text. */
export function violations(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') seen.push(String(s.error));
  })();
  return seen;
}
