import { isName } from '@aoa/core';
import { rotator as pb } from '@aoa/proto';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { parseCommand, secondsFlag, usage } from './args.js';
import {
  CALLER_OPTIONS,
  type CallerFlags,
  callAs,
  EXIT,
  refusal,
  resolveCaller,
  type ServiceCaller,
  type UnaryInvoke,
} from './caller.js';

const rotatorClient = (address: string, channel: ChannelCredentials) =>
  new pb.RotatorClient(address, channel);

/** One unary `aoa.v1.Rotator` call as `caller` (fresh client assertion, 10 s deadline). */
export function callRotator<Res>(caller: ServiceCaller, invoke: UnaryInvoke<pb.RotatorClient, Res>) {
  return callAs(caller, rotatorClient, invoke);
}

/** Calls `ListGrants`: every grant for an administrator, the caller's own for a parent client. */
export async function listGrants(
  caller: ServiceCaller,
  filter: { environment?: string | undefined; child?: string | undefined },
): Promise<pb.Grant[]> {
  const request = pb.ListGrantsRequest.fromPartial(filter);
  const response = await callRotator<pb.ListGrantsResponse>(caller, (c, md, options, done) =>
    c.listGrants(request, md, options, done),
  );
  return response.grants;
}

/** Calls `CreateGrant` (administrators) and returns the stored grant. */
export async function createGrant(caller: ServiceCaller, request: pb.CreateGrantRequest): Promise<pb.Grant> {
  const response = await callRotator<pb.CreateGrantResponse>(caller, (c, md, options, done) =>
    c.createGrant(request, md, options, done),
  );
  if (!response.grant) throw new Error('the rotator answered CreateGrant without a grant');
  return response.grant;
}

/** The one-grant actions: `delete`, `restore` (lifts a revocation) and `rotate` (mint and deliver now). */
export type GrantAction = 'delete' | 'restore' | 'rotate';

/** Calls `DeleteGrant`, `RestoreGrant` or `RotateNow`; `restore` answers the restored grant. */
export async function grantAction(
  caller: ServiceCaller,
  action: GrantAction,
  grantId: string,
): Promise<pb.Grant | undefined> {
  switch (action) {
    case 'delete':
      await callRotator<pb.DeleteGrantResponse>(caller, (c, md, options, done) =>
        c.deleteGrant({ grantId }, md, options, done),
      );
      return undefined;
    case 'restore':
      return (
        await callRotator<pb.RestoreGrantResponse>(caller, (c, md, options, done) =>
          c.restoreGrant({ grantId }, md, options, done),
        )
      ).grant;
    case 'rotate':
      await callRotator<pb.RotateNowResponse>(caller, (c, md, options, done) =>
        c.rotateNow({ grantId }, md, options, done),
      );
      return undefined;
  }
}

/** The `grants create` flags, as parsed. */
export interface CreateGrantFlags {
  sub?: string | undefined;
  app?: string | undefined;
  env?: string | undefined;
  scope: string[];
  audience: string[];
  ttl?: string | undefined;
  'expires-in'?: string | undefined;
  'expires-at'?: string | undefined;
  'parent-client'?: string | undefined;
}

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** `90s`, `15m`, `12h`, `30d` in seconds; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : undefined;
}

/** `--expires-in` / `--expires-at` as unix seconds (0: the longest the rotator allows), or a problem. */
function expiryOf(flags: CreateGrantFlags, nowSeconds: number): number | { problem: string } {
  const inFlag = flags['expires-in'];
  const atFlag = flags['expires-at'];
  if (inFlag !== undefined && atFlag !== undefined)
    return { problem: 'give --expires-in or --expires-at, not both' };
  if (inFlag !== undefined) {
    const seconds = parseDuration(inFlag);
    return seconds === undefined
      ? { problem: '--expires-in must be a duration such as 90s, 15m, 12h or 30d' }
      : nowSeconds + seconds;
  }
  if (atFlag === undefined) return 0;
  const at = /^\d+$/.test(atFlag) ? Number(atFlag) * 1000 : Date.parse(atFlag);
  if (!Number.isSafeInteger(at) || at <= 0) {
    return { problem: '--expires-at must be an ISO 8601 time (2027-01-31T00:00:00Z) or unix seconds' };
  }
  return Math.floor(at / 1000);
}

/** Turns the `grants create` flags into a request, or a usage message naming what is wrong. */
export function grantRequestOf(
  flags: CreateGrantFlags,
  nowSeconds: number,
): pb.CreateGrantRequest | { usage: string } {
  const missing = [
    ...(['sub', 'app', 'env', 'ttl'] as const).filter((k) => !flags[k]),
    ...(flags.scope.length === 0 ? ['scope'] : []),
  ];
  if (missing.length > 0) return { usage: `missing ${missing.map((m) => `--${m}`).join(', ')}` };
  for (const k of ['app', 'env'] as const) {
    if (!isName(flags[k])) {
      return { usage: `--${k} must be lowercase letters, digits and inner dashes (at most 63)` };
    }
  }
  if (!flags.sub?.startsWith('idp:')) return { usage: '--sub must be a principal idp:<namespace>:<subject>' };
  const ttl = secondsFlag('ttl', flags.ttl as string, 1);
  if (typeof ttl !== 'number') return { usage: ttl.problem };
  const expiresAt = expiryOf(flags, nowSeconds);
  if (typeof expiresAt !== 'number') return { usage: expiresAt.problem };
  return pb.CreateGrantRequest.fromPartial({
    sub: flags.sub,
    child: flags.app,
    environment: flags.env,
    scopes: flags.scope,
    audience: flags.audience,
    tokenTtlSeconds: ttl,
    expiresAt,
    parentClient: flags['parent-client'] ?? '',
  });
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

const isoSeconds = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString();

/** One line per grant: id, app, env, state, token TTL, expiry, scopes, agents. */
export function formatGrants(grants: pb.Grant[]): string {
  if (grants.length === 0) return 'no grants\n';
  return table(
    ['ID', 'APP', 'ENV', 'STATE', 'TTL', 'EXPIRES', 'SCOPES', 'AGENTS'],
    grants.map((g) => [
      g.id,
      g.child,
      g.environment,
      g.state,
      `${g.tokenTtlSeconds}s`,
      isoSeconds(g.expiresAt),
      g.scopes.join(' '),
      g.agents.join(',') || '-',
    ]),
  );
}

/** One grant, field by field. */
export function formatGrant(verb: string, g: pb.Grant): string {
  return (
    `${verb} grant ${g.id}\n  sub       ${g.sub}\n  app       ${g.child} in ${g.environment}\n` +
    `  scopes    ${g.scopes.join(' ')}\n  audience  ${g.audience.join(' ') || '-'}\n` +
    `  ttl       ${g.tokenTtlSeconds}s\n  expires   ${isoSeconds(g.expiresAt)}\n` +
    `  state     ${g.state}\n  parent    ${g.parentClient}\n`
  );
}

const print = (json: boolean, value: unknown, human: string) =>
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : human);

/** `aoa grants list|create|delete|restore|rotate`: returns the exit code. */
export async function grantsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
      return grantsList(rest);
    case 'create':
      return grantsCreate(rest);
    case 'delete':
    case 'restore':
    case 'rotate':
      return grantsAct(sub, rest);
    default:
      return usage(
        'grants',
        `unknown subcommand ${JSON.stringify(sub ?? '')} (list, create, delete, restore, rotate)`,
      );
  }
}

async function withCaller(
  command: string,
  values: CallerFlags,
  run: (caller: ServiceCaller) => Promise<void>,
): Promise<number> {
  const caller = await resolveCaller(command, values, (f) => f.rotator?.grpc);
  if (!caller) return EXIT.usage;
  try {
    await run(caller);
    return EXIT.ok;
  } catch (error) {
    return refusal(command, error);
  }
}

async function grantsList(args: string[]): Promise<number> {
  const options = { ...CALLER_OPTIONS, env: { type: 'string' }, app: { type: 'string' } } as const;
  const parsed = parseCommand('grants list', { args, options });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  for (const k of ['env', 'app'] as const) {
    if (values[k] !== undefined && !isName(values[k])) {
      return usage('grants list', `--${k} must be lowercase letters, digits and inner dashes`);
    }
  }
  return withCaller('grants list', values, async (caller) => {
    const grants = await listGrants(caller, { environment: values.env, child: values.app });
    print(values.json, grants, formatGrants(grants));
  });
}

async function grantsCreate(args: string[]): Promise<number> {
  const options = {
    ...CALLER_OPTIONS,
    sub: { type: 'string' },
    app: { type: 'string' },
    env: { type: 'string' },
    scope: { type: 'string', multiple: true, default: [] as string[] },
    audience: { type: 'string', multiple: true, default: [] as string[] },
    ttl: { type: 'string' },
    'expires-in': { type: 'string' },
    'expires-at': { type: 'string' },
    'parent-client': { type: 'string' },
  } as const;
  const parsed = parseCommand('grants create', { args, options });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const request = grantRequestOf(values, Math.floor(Date.now() / 1000));
  if ('usage' in request) return usage('grants create', request.usage);
  return withCaller('grants create', values, async (caller) => {
    const grant = await createGrant(caller, request);
    print(values.json, grant, formatGrant('created', grant));
  });
}

async function grantsAct(action: GrantAction, args: string[]): Promise<number> {
  const command = `grants ${action}`;
  const parsed = parseCommand(command, { args, options: CALLER_OPTIONS, allowPositionals: true });
  if (!parsed) return EXIT.usage;
  const { values, positionals } = parsed;
  const [grantId, ...extra] = positionals;
  if (!grantId || extra.length > 0) return usage(command, 'give exactly one grant id');
  return withCaller(command, values, async (caller) => {
    const grant = await grantAction(caller, action, grantId);
    const done = { delete: 'deleted', restore: 'restored', rotate: 'rotation requested for' }[action];
    if (grant) print(values.json, grant, formatGrant(done, grant));
    else print(values.json, { grantId, action }, `${done} grant ${grantId}\n`);
  });
}
