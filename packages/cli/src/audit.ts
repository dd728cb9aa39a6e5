import { parseArgs } from 'node:util';
import type { AuditEventType } from '@aoa/core';
import { type events, auditor as pb } from '@aoa/proto';
import type { ChannelCredentials, ServiceError } from '@grpc/grpc-js';
import { jtiOf, MAX_LIMIT, queryRequestOf, UsageError } from './audit-filters.js';
import {
  eventJson,
  formatCreep,
  formatEvent,
  formatEvents,
  formatLineage,
  formatUnused,
  formatVerify,
} from './audit-format.js';
import {
  assertionMetadata,
  CALLER_OPTIONS,
  callAs,
  channelCredentials,
  EXIT,
  refusal,
  resolveCaller,
  type ServiceCaller,
} from './caller.js';
import { RpcError } from './delegate.js';

const auditorClient = (address: string, channel: ChannelCredentials) =>
  new pb.AuditorClient(address, channel);

const FILTER_OPTIONS = {
  since: { type: 'string' },
  until: { type: 'string' },
  type: { type: 'string', multiple: true },
  app: { type: 'string' },
  env: { type: 'string' },
  subject: { type: 'string' },
  jti: { type: 'string' },
  outcome: { type: 'string' },
  limit: { type: 'string' },
} as const;

const TAIL_POLL_MS = 500;
const CREEP_TYPE: AuditEventType = 'alert.privilege_creep';

/**
 * `Auditor.Query` as `caller`, with a fresh client assertion and a 30 s deadline: every event of the
 * stream. A refusal rejects with `RpcError`.
 */
export async function queryAuditor(
  caller: ServiceCaller,
  request: pb.QueryRequest,
): Promise<events.AuditEvent[]> {
  const client = auditorClient(caller.grpc, channelCredentials(caller.caFile));
  try {
    const metadata = await assertionMetadata(caller);
    return await new Promise((resolve, reject) => {
      const out: events.AuditEvent[] = [];
      const call = client.query(request, metadata, { deadline: Date.now() + 30_000 });
      call.on('data', (event: events.AuditEvent) => out.push(event));
      call.on('error', (error: ServiceError) => reject(RpcError.of(error)));
      call.on('end', () => resolve(out));
    });
  } finally {
    client.close();
  }
}

/** `Auditor.VerifyChain` as `caller`; walking a large store takes a while, so the deadline is 5 min. */
export const verifyAuditChain = (caller: ServiceCaller): Promise<pb.VerifyChainResponse> =>
  callAs(
    caller,
    auditorClient,
    (client, metadata, options, done) => client.verifyChain({}, metadata, options, done),
    300_000,
  );

/** `Auditor.UnusedScopes` as `caller`: scopes issued or granted that no verifier reported in use. */
export const auditUnusedScopes = (
  caller: ServiceCaller,
  request: pb.UnusedScopesRequest,
): Promise<pb.UnusedScopesResponse> =>
  callAs(caller, auditorClient, (client, metadata, options, done) =>
    client.unusedScopes(request, metadata, options, done),
  );

/** `Auditor.Lineage` as `caller`: the chain above a token and the tree below it. */
export const auditLineage = (caller: ServiceCaller, jti: string): Promise<pb.LineageResponse> =>
  callAs(caller, auditorClient, (client, metadata, options, done) =>
    client.lineage({ jti }, metadata, options, done),
  );

/**
 * Follows the audit log: every `TAIL_POLL_MS`, the events after the last one seen (`page_token`),
 * page by page; `onEvent` sees each once. Runs until `signal` aborts.
 */
export async function followAudit(
  caller: ServiceCaller,
  start: pb.QueryRequest,
  onEvent: (event: events.AuditEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  let pageToken = '';
  while (!signal.aborted) {
    const page = await queryAuditor(caller, { ...start, limit: MAX_LIMIT, pageToken });
    for (const event of page) onEvent(event);
    pageToken = page.at(-1)?.id ?? pageToken;
    if (page.length === MAX_LIMIT) continue;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, TAIL_POLL_MS);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const print = (text: string) => process.stdout.write(text);
const printJson = (value: unknown) => print(`${JSON.stringify(value, null, 2)}\n`);

type Sub = (args: string[]) => Promise<number>;

/** `aoa audit query|tail|lineage|verify|creep|unused`: read the audit log as an administrator client. */
export async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const subs: Record<string, Sub> = { query, tail, lineage, verify, creep, unused };
  const run = sub === undefined ? undefined : subs[sub];
  if (!run) {
    process.stderr.write(
      `aoa audit: unknown subcommand ${JSON.stringify(sub ?? '')} (query, tail, lineage, verify, creep, unused)\n`,
    );
    return EXIT.usage;
  }
  try {
    return await run(rest);
  } catch (error) {
    const badFlag =
      error instanceof TypeError && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (error instanceof UsageError || badFlag) {
      process.stderr.write(`aoa audit ${sub}: ${(error as Error).message}\n`);
      return EXIT.usage;
    }
    return refusal(`audit ${sub}`, error);
  }
}

const parseFiltered = (args: string[]) =>
  parseArgs({ args, options: { ...CALLER_OPTIONS, ...FILTER_OPTIONS } });

const parsePlain = (args: string[]) => parseArgs({ args, allowPositionals: true, options: CALLER_OPTIONS });

async function callerFor(command: string, values: Parameters<typeof resolveCaller>[1]) {
  const caller = await resolveCaller(`audit ${command}`, values, (f) => f.auditor?.grpc);
  if (!caller) throw new UsageError('the auditor and the client to call it as are needed (see above)');
  return caller;
}

async function query(args: string[]): Promise<number> {
  const { values } = parseFiltered(args);
  const request = queryRequestOf(values, Date.now());
  const list = await queryAuditor(await callerFor('query', values), request);
  if (values.json) printJson(list.map(eventJson));
  else print(formatEvents(list));
  return EXIT.ok;
}

async function tail(args: string[]): Promise<number> {
  const { values } = parseFiltered(args);
  if (values.limit !== undefined)
    throw new UsageError('--limit: tail follows every event; use aoa audit query');
  const request = queryRequestOf({ ...values, since: values.since ?? '1m' }, Date.now());
  const caller = await callerFor('tail', values);
  const stop = new AbortController();
  const abort = () => stop.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    await followAudit(
      caller,
      request,
      (event) => print(values.json ? `${JSON.stringify(eventJson(event))}\n` : `${formatEvent(event)}\n`),
      stop.signal,
    );
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
  return EXIT.ok;
}

async function lineage(args: string[]): Promise<number> {
  const { values, positionals } = parsePlain(args);
  if (positionals.length > 1) throw new UsageError('give one jti');
  const jti = jtiOf(positionals[0]);
  const tree = await auditLineage(await callerFor('lineage', values), jti);
  if (values.json) printJson(pb.LineageResponse.toJSON(tree));
  else print(formatLineage(tree));
  return EXIT.ok;
}

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parsePlain(args);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const result = await verifyAuditChain(await callerFor('verify', values));
  if (values.json) printJson(pb.VerifyChainResponse.toJSON(result));
  else print(formatVerify(result));
  return result.ok ? EXIT.ok : EXIT.failure;
}

async function creep(args: string[]): Promise<number> {
  const { values } = parseFiltered(args);
  if (values.type !== undefined) throw new UsageError(`--type: creep lists ${CREEP_TYPE} events only`);
  const request = queryRequestOf({ ...values, type: [CREEP_TYPE] }, Date.now());
  const alerts = await queryAuditor(await callerFor('creep', values), request);
  if (values.json) printJson(alerts.map(eventJson));
  else print(formatCreep(alerts));
  return EXIT.ok;
}

async function unused(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...CALLER_OPTIONS, app: { type: 'string' }, env: { type: 'string' } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const report = await auditUnusedScopes(await callerFor('unused', values), {
    env: values.env ?? '',
    app: values.app ?? '',
  });
  if (values.json) printJson(pb.UnusedScopesResponse.toJSON(report));
  else print(formatUnused(report));
  return EXIT.ok;
}
