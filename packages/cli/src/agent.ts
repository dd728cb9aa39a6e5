import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createLogger, isName } from '@aoa/core';
import type { rotator as pb } from '@aoa/proto';
import { agentKeysCommand } from './agent-keys.js';
import { type EnrolCredential, runSidecar, type SidecarOptions, SidecarUsageError } from './agent-sidecar.js';
import { parseCommand, secondsFlag, usage } from './args.js';
import { CALLER_OPTIONS, EXIT, refusal, resolveCaller, type ServiceCaller } from './caller.js';
import { RpcError, readDevFacts } from './delegate.js';
import type { DevFacts } from './dev.js';
import { callRotator, listGrants } from './grants.js';

/** Calls `CreateJoinToken` (administrators or the grant's parent client); the token is shown once. */
export function createJoinToken(
  caller: ServiceCaller,
  grantId: string,
  ttlSeconds: number,
): Promise<pb.CreateJoinTokenResponse> {
  return callRotator<pb.CreateJoinTokenResponse>(caller, (c, md, options, done) =>
    c.createJoinToken({ grantId, ttlSeconds }, md, options, done),
  );
}

/** The one grant of `app` in `env` the caller can see, or a problem naming none or all of them. */
export async function grantIdFor(
  caller: ServiceCaller,
  app: string,
  env: string,
): Promise<string | { problem: string }> {
  const grants = (await listGrants(caller, { environment: env, child: app })).filter(
    (g) => g.child === app && g.environment === env,
  );
  if (grants.length === 1) return (grants[0] as pb.Grant).id;
  if (grants.length === 0) return { problem: `no grant of ${app} in ${env} is visible to this client` };
  return {
    problem: `${grants.length} grants of ${app} in ${env}: ${grants.map((g) => g.id).join(', ')}; choose one with --grant`,
  };
}

/** `aoa agent token create ...` or `aoa agent ...` (the sidecar): returns the exit code. */
export async function agentCommand(args: string[]): Promise<number> {
  if (args[0] === 'keys') return agentKeysCommand(args.slice(1));
  if (args[0] !== 'token') return sidecar(args);
  if (args[1] !== 'create') {
    return usage('agent token', `unknown subcommand ${JSON.stringify(args[1] ?? '')} (try create)`);
  }
  return tokenCreate(args.slice(2));
}

async function tokenCreate(args: string[]): Promise<number> {
  const command = 'agent token create';
  const options = {
    ...CALLER_OPTIONS,
    grant: { type: 'string' },
    app: { type: 'string' },
    env: { type: 'string' },
    ttl: { type: 'string', default: '0' },
  } as const;
  const parsed = parseCommand(command, { args, options });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const byApp = values.app !== undefined || values.env !== undefined;
  if (byApp === (values.grant !== undefined)) return usage(command, 'give --grant ID, or --app with --env');
  if (byApp && (!isName(values.app) || !isName(values.env))) {
    return usage(command, '--app and --env go together, each lowercase letters, digits and inner dashes');
  }
  if (values.grant === '') return usage(command, '--grant must not be empty');
  const ttl = secondsFlag('ttl', values.ttl, 0);
  if (typeof ttl !== 'number') return usage(command, ttl.problem);
  const caller = await resolveCaller(command, values, (f) => f.rotator?.grpc);
  if (!caller) return EXIT.usage;
  try {
    const grantId = values.grant ?? (await grantIdFor(caller, values.app as string, values.env as string));
    if (typeof grantId !== 'string') return usage(command, grantId.problem);
    const r = await createJoinToken(caller, grantId, ttl);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ grantId, joinToken: r.joinToken, expiresAt: r.expiresAt }, null, 2)}\n`,
      );
    } else {
      const until = new Date(r.expiresAt * 1000).toISOString();
      process.stderr.write(`one-time join token for grant ${grantId}, valid until ${until}:\n`);
      process.stdout.write(`${r.joinToken}\n`);
    }
    return EXIT.ok;
  } catch (error) {
    return refusal(command, error);
  }
}

const SIDECAR_OPTIONS = {
  dev: { type: 'boolean', default: false },
  'data-dir': { type: 'string', default: '.aoa' },
  'join-token': { type: 'string' },
  'join-token-file': { type: 'string' },
  'attestation-file': { type: 'string' },
  grant: { type: 'string' },
  out: { type: 'string' },
  'key-dir': { type: 'string' },
  'agent-id': { type: 'string' },
  'rotate-keys': { type: 'boolean', default: false },
  nats: { type: 'string' },
  'nats-user': { type: 'string' },
  'nats-password-file': { type: 'string' },
  'nats-ca-file': { type: 'string' },
  rotator: { type: 'string' },
  'tls-ca': { type: 'string' },
  issuer: { type: 'string' },
  audience: { type: 'string', multiple: true, default: [] as string[] },
  'subject-prefix': { type: 'string', default: 'aoa' },
  'log-level': { type: 'string', default: 'info' },
} as const;

/** The sidecar's flags, as parsed. */
interface SidecarFlags {
  out?: string | undefined;
  'key-dir'?: string | undefined;
  'agent-id'?: string | undefined;
  'rotate-keys'?: boolean | undefined;
  nats?: string | undefined;
  'nats-user'?: string | undefined;
  'nats-password-file'?: string | undefined;
  'nats-ca-file'?: string | undefined;
  rotator?: string | undefined;
  'tls-ca'?: string | undefined;
  issuer?: string | undefined;
  audience?: string[] | undefined;
  'subject-prefix'?: string | undefined;
  'log-level'?: string | undefined;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The sidecar's flags (with `--dev`, `.aoa/dev.json` fills the gaps) as options, or a usage problem. */
function sidecarOptionsOf(
  values: SidecarFlags,
  facts: Partial<DevFacts>,
  by: EnrolCredential | undefined,
): SidecarOptions | { usage: string } {
  const natsUrl = values.nats ?? facts.natsUrl;
  const issuer = values.issuer ?? facts.issuer?.issuer;
  const rotator = values.rotator ?? facts.rotator?.grpc;
  const missing = [
    ...(['out', 'key-dir', 'agent-id'] as const).filter((k) => !values[k]),
    ...(natsUrl ? [] : ['nats']),
    ...(issuer ? [] : ['issuer']),
  ];
  if (missing.length > 0) return { usage: `missing ${missing.map((m) => `--${m}`).join(', ')}` };
  if (!isName(values['agent-id'])) {
    return { usage: '--agent-id must be lowercase letters, digits and inner dashes (at most 63)' };
  }
  if (!LOG_LEVELS.includes(values['log-level'] ?? 'info')) {
    return { usage: `--log-level must be one of ${LOG_LEVELS.join(', ')}` };
  }
  return {
    agentId: values['agent-id'],
    keyDir: values['key-dir'] as string,
    out: values.out as string,
    natsUrl: natsUrl as string,
    natsUser: values['nats-user'],
    natsPasswordFile: values['nats-password-file'],
    natsCaFile: values['nats-ca-file'],
    issuer: issuer as string,
    audience: values.audience ?? [],
    subjectPrefix: values['subject-prefix'] ?? 'aoa',
    enrol: by && rotator ? { rotator, by, caFile: values['tls-ca'] } : undefined,
    rotateKeys: values['rotate-keys'] ?? false,
  };
}

/** How the agent enrols: `--attestation-file` (a pod), or a join token given or read from a file. */
async function enrolCredentialOf(values: {
  'join-token'?: string;
  'join-token-file'?: string;
  'attestation-file'?: string;
  grant?: string;
}): Promise<EnrolCredential | { usage: string } | undefined> {
  const attestationFile = values['attestation-file'];
  if (attestationFile !== undefined) {
    if (values['join-token'] !== undefined || values['join-token-file'] !== undefined) {
      return { usage: 'give a join token or --attestation-file, not both' };
    }
    return { attestationFile, grant: values.grant };
  }
  if (values.grant !== undefined) return { usage: '--grant goes with --attestation-file' };
  const joinToken = await joinTokenOf(values);
  return typeof joinToken === 'string' ? { joinToken } : joinToken;
}

async function joinTokenOf(values: { 'join-token'?: string; 'join-token-file'?: string }) {
  const file = values['join-token-file'];
  if (file === undefined) return values['join-token'];
  if (values['join-token'] !== undefined)
    return { usage: 'give --join-token or --join-token-file, not both' };
  try {
    const token = (await readFile(file, 'utf8')).trim();
    return token || { usage: `--join-token-file ${file} is empty` };
  } catch (error) {
    return { usage: `--join-token-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code})` };
  }
}

async function sidecar(args: string[]): Promise<number> {
  const parsed = parseCommand('agent', { args, options: SIDECAR_OPTIONS });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const facts: Partial<DevFacts> = values.dev ? await readDevFacts(join(values['data-dir'], 'dev.json')) : {};
  const given = await enrolCredentialOf(values);
  if (given && 'usage' in given) return usage('agent', given.usage);
  const demo = facts.demoAgent?.joinToken;
  const options = sidecarOptionsOf(values, facts, given ?? (demo ? { joinToken: demo } : undefined));
  if ('usage' in options) return usage('agent', options.usage);
  if (
    !(await stat(dirname(options.out)).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    return usage('agent', `--out: directory ${dirname(options.out)} does not exist`);
  }
  return runUntilSignal(options, values['log-level']);
}

async function runUntilSignal(options: SidecarOptions, level: string): Promise<number> {
  const log = createLogger({ service: 'aoa-agent', level });
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  try {
    await runSidecar(options, log, stopped);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof SidecarUsageError) return usage('agent', error.message);
    if (error instanceof RpcError) return refusal('agent: enrolment', error);
    process.stderr.write(`aoa agent: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
}
