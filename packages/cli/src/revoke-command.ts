import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCommand, usage } from './args.js';
import {
  CALLER_OPTIONS,
  CERTIFIED_CALLER_OPTIONS,
  EXIT,
  refusal,
  resolveCaller,
  resolveCertifiedCaller,
} from './caller.js';
import { RpcError, readDevFacts } from './delegate.js';
import { formatRebuild, rebuildRevocations } from './revocations-rebuild.js';
import { formatRevocations, listRevocationsAll, revokeOnce, revokeTargetOf } from './revoke.js';

/** `aoa revoke`. */
export async function revokeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...CERTIFIED_CALLER_OPTIONS,
      jti: { type: 'string' },
      grant: { type: 'string' },
      app: { type: 'string' },
      env: { type: 'string' },
      subject: { type: 'string' },
      kid: { type: 'string' },
      reason: { type: 'string', default: '' },
    },
  });
  const target = revokeTargetOf(values);
  if ('usage' in target) {
    process.stderr.write(`aoa revoke: ${target.usage}\n`);
    return EXIT.usage;
  }
  const caller = await resolveCertifiedCaller('revoke', values, (f) => f.revoker?.grpc);
  if (!caller) return EXIT.usage;
  try {
    const r = await revokeOnce(caller, target, values.reason);
    if (values.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else
      process.stdout.write(
        `revoked ${r.key}\n  id  ${r.revocationId}\n  at  ${new Date(Number(r.atMs)).toISOString()}\n`,
      );
    return EXIT.ok;
  } catch (error) {
    return refusal('revoke', error);
  }
}

/** `aoa revocations list|rebuild`. */
export async function revocationsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'rebuild') return revocationsRebuild(rest);
  if (sub !== 'list') {
    process.stderr.write(
      `aoa revocations: unknown subcommand ${JSON.stringify(sub ?? '')} (try list or rebuild)\n`,
    );
    return EXIT.usage;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      ...CERTIFIED_CALLER_OPTIONS,
      kind: { type: 'string' },
      env: { type: 'string' },
      app: { type: 'string' },
      jti: { type: 'string' },
    },
  });
  if (values.kind !== undefined && !['jti', 'app', 'sub', 'kid', 'grant'].includes(values.kind)) {
    process.stderr.write('aoa revocations list: --kind must be one of jti, app, sub, kid, grant\n');
    return EXIT.usage;
  }
  const caller = await resolveCertifiedCaller('revocations list', values, (f) => f.revoker?.grpc);
  if (!caller) return EXIT.usage;
  try {
    const list = await listRevocationsAll(caller, {
      kind: values.kind,
      environment: values.env,
      app: values.app,
      jti: values.jti,
    });
    process.stdout.write(values.json ? `${JSON.stringify(list, null, 2)}\n` : formatRevocations(list));
    return EXIT.ok;
  } catch (error) {
    return refusal('revocations list', error);
  }
}

async function revocationsRebuild(args: string[]): Promise<number> {
  const parsed = parseCommand('revocations rebuild', {
    args,
    options: {
      ...CALLER_OPTIONS,
      nats: { type: 'string' },
      'nats-user': { type: 'string' },
      'nats-password-file': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const auditorCaller = await resolveCaller('revocations rebuild', values, (f) => f.auditor?.grpc);
  if (!auditorCaller) return EXIT.usage;
  const natsUrl =
    values.nats ??
    (values.dev ? (await readDevFacts(join(values['data-dir'], 'dev.json'))).natsUrl : undefined);
  if (!natsUrl) return usage('revocations rebuild', 'without --dev, also give --nats URL');
  if (Boolean(values['nats-user']) !== Boolean(values['nats-password-file'])) {
    return usage('revocations rebuild', '--nats-user and --nats-password-file go together');
  }
  const pass = values['nats-password-file']
    ? (await readFile(values['nats-password-file'], 'utf8')).trim()
    : undefined;
  try {
    const report = await rebuildRevocations(
      { auditor: auditorCaller, nats: { url: natsUrl, user: values['nats-user'], pass } },
      { dryRun: values['dry-run'], nowMs: Date.now() },
    );
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : formatRebuild(report, values['dry-run']),
    );
    return EXIT.ok;
  } catch (error) {
    if (error instanceof RpcError) return refusal('revocations rebuild', error);
    process.stderr.write(
      `aoa revocations rebuild: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return EXIT.unavailable;
  }
}
