import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { parseCommand, usage } from './args.js';
import { EXIT } from './caller.js';
import { readDevFacts } from './delegate.js';

/** How long each probe (one HTTP request, or the NATS connect plus JetStream check) may take. */
const PROBE_TIMEOUT_MS = 2000;

/** The HTTP listeners the services use when run as processes with their defaults. */
export const DEFAULT_SERVICES: readonly ServiceTarget[] = [
  { name: 'issuer', url: 'http://127.0.0.1:7402' },
  { name: 'revoker', url: 'http://127.0.0.1:7412' },
  { name: 'rotator', url: 'http://127.0.0.1:7422' },
  { name: 'auditor', url: 'http://127.0.0.1:7432' },
];
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** A service to probe: its name and the base URL of its HTTP listener. */
export interface ServiceTarget {
  name: string;
  url: string;
}

/** One row of `aoa status`: `problems` when not ready, `reason` when down. */
export interface ServiceState {
  service: string;
  url: string;
  state: 'ready' | 'not ready' | 'down';
  problems?: string[];
  reason?: string;
}

/**
 * Parses `--service NAME=URL` flags (http or https base URLs, each name once).
 *
 * @example
 * serviceTargetsOf(['issuer=http://127.0.0.1:7402']); // [{ name: 'issuer', url: 'http://127.0.0.1:7402' }]
 */
export function serviceTargetsOf(flags: readonly string[]): ServiceTarget[] | { usage: string } {
  const targets: ServiceTarget[] = [];
  for (const flag of flags) {
    const at = flag.indexOf('=');
    const name = flag.slice(0, at);
    const url = flag.slice(at + 1);
    const example = 'e.g. --service issuer=http://127.0.0.1:7402';
    if (at < 0 || !/^[a-z][a-z0-9-]{0,62}$/.test(name)) {
      return {
        usage: `--service ${JSON.stringify(flag)}: expected NAME=URL with a lowercase name (${example})`,
      };
    }
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      return { usage: `--service ${name}: ${JSON.stringify(url)} is not an http(s) URL (${example})` };
    }
    if (targets.some((t) => t.name === name)) return { usage: `--service ${name}: given twice` };
    targets.push({ name, url: url.replace(/\/+$/, '') });
  }
  return targets;
}

/** Probes `/healthz` and `/readyz` of one service, both at once, each within 2 s. */
export async function probeService(target: ServiceTarget): Promise<ServiceState> {
  const row = { service: target.name, url: target.url };
  const [health, ready] = await Promise.all([
    getJson(`${target.url}/healthz`),
    getJson(`${target.url}/readyz`),
  ]);
  if ('error' in health) return { ...row, state: 'down', reason: health.error };
  if (health.status !== 200) return { ...row, state: 'down', reason: `/healthz answered ${health.status}` };
  if ('error' in ready) return { ...row, state: 'not ready', problems: [`/readyz: ${ready.error}`] };
  const body = ready.body as { ready?: unknown; problems?: unknown } | undefined;
  if (ready.status === 200 && body?.ready === true) return { ...row, state: 'ready' };
  const problems = Array.isArray(body?.problems) ? body.problems.map(String) : [];
  return {
    ...row,
    state: 'not ready',
    problems: problems.length > 0 ? problems : [`/readyz answered ${ready.status}`],
  };
}

async function getJson(url: string): Promise<{ status: number; body: unknown } | { error: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body: unknown = await response.json().catch(() => undefined);
    return { status: response.status, body };
  } catch (error) {
    return { error: failureOf(error) };
  }
}

/** A short reason for a failed probe: the system error code when there is one. */
function failureOf(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${PROBE_TIMEOUT_MS / 1000} s`;
  }
  // fetch() rejects with "fetch failed"; what went wrong is in its cause.
  const cause = error instanceof Error ? error.cause : undefined;
  if (typeof (cause as { code?: unknown } | undefined)?.code === 'string')
    return (cause as { code: string }).code;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** Connects to NATS and asks for the JetStream account info, within 2 s in all. */
export async function probeNats(url: string): Promise<ServiceState> {
  const row = { service: 'nats', url };
  const deadline = Date.now() + PROBE_TIMEOUT_MS;
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: url, timeout: PROBE_TIMEOUT_MS, reconnect: false });
  } catch (error) {
    return { ...row, state: 'down', reason: failureOf(error) };
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: Math.max(deadline - Date.now(), 1) });
    await jsm.getAccountInfo();
    return { ...row, state: 'ready' };
  } catch (error) {
    return { ...row, state: 'not ready', problems: [`JetStream: ${failureOf(error)}`] };
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** The table `aoa status` prints: SERVICE, URL, STATE. */
export function formatStatus(rows: readonly ServiceState[]): string {
  const stateOf = (r: ServiceState) =>
    r.state === 'ready'
      ? 'ready'
      : r.state === 'down'
        ? `down: ${r.reason}`
        : `not ready: ${(r.problems ?? []).join('; ')}`;
  const table = [['SERVICE', 'URL', 'STATE'], ...rows.map((r) => [r.service, r.url, stateOf(r)])];
  const width = (i: number) => Math.max(...table.map((line) => (line[i] ?? '').length));
  const [w0, w1] = [width(0), width(1)];
  return table.map(([s = '', u = '', st = '']) => `${s.padEnd(w0)}  ${u.padEnd(w1)}  ${st}\n`).join('');
}

/** What to probe: `--dev` facts or the default ports, then every `--service` (replacing by name). */
async function targetsOf(values: {
  dev: boolean;
  'data-dir': string;
  service: string[];
  nats?: string | undefined;
}): Promise<{ services: ServiceTarget[]; nats: string | undefined } | { usage: string }> {
  const given = serviceTargetsOf(values.service);
  if ('usage' in given) return given;
  let services: ServiceTarget[] = given.length > 0 ? [] : [...DEFAULT_SERVICES];
  let nats = values.nats ?? (given.length > 0 ? undefined : DEFAULT_NATS_URL);
  if (values.dev) {
    const facts = await readDevFacts(join(values['data-dir'], 'dev.json'));
    services = (['issuer', 'revoker', 'rotator', 'auditor'] as const)
      .filter((name) => facts[name]?.http)
      .map((name) => ({ name, url: facts[name].http }));
    nats = values.nats ?? facts.natsUrl;
  }
  const names = new Set(given.map((t) => t.name));
  return { services: [...services.filter((t) => !names.has(t.name)), ...given], nats };
}

/**
 * `aoa status`: probes every service and NATS at once and prints one row each; exit 0 when all are
 * ready, 4 otherwise, 2 for bad flags.
 */
export async function statusCommand(args: string[]): Promise<number> {
  const parsed = parseCommand('status', {
    args,
    options: {
      dev: { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: '.aoa' },
      service: { type: 'string', multiple: true, default: [] },
      nats: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  // Without dev.json, `aoa dev` is not running: as unavailable as a service that does not answer.
  const targets = await targetsOf(values).catch((error: unknown) => ({ down: (error as Error).message }));
  if ('usage' in targets) return usage('status', targets.usage);
  if ('down' in targets) {
    process.stderr.write(`aoa status: ${targets.down}\n`);
    return EXIT.unavailable;
  }
  const rows = await Promise.all([
    ...targets.services.map(probeService),
    ...(targets.nats ? [probeNats(targets.nats)] : []),
  ]);
  const ready = rows.every((r) => r.state === 'ready');
  process.stdout.write(
    values.json ? `${JSON.stringify({ ready, services: rows }, null, 2)}\n` : formatStatus(rows),
  );
  return ready ? EXIT.ok : EXIT.unavailable;
}
