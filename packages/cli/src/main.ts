import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { status } from '@grpc/grpc-js';
import type { JWK } from 'jose';
import { CALLER_OPTIONS, EXIT, refusal, resolveCaller } from './caller.js';
import { delegateOnce, devIdpToken, RpcError, readDevFacts } from './delegate.js';
import { devGuide, startDev } from './dev.js';
import { MissingNatsServer } from './dev-nats.js';
import { formatRevocations, listRevocationsAll, revokeOnce, revokeTargetOf } from './revoke.js';

const HELP = `aoa — App of Apps OAuth

Usage:
  aoa dev [--data-dir .aoa] [--log-level warn]
      Run NATS, a development IdP, the issuer and the revoker on loopback with embedded defaults.
      Writes every URL and demo credential to <data-dir>/dev.json.

  aoa delegate --child APP --env ENV --scope S [--scope S ...] [--audience A ...] [--ttl SECONDS]
               [--holder-jkt JKT | --bearer] [--json]
               (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL --client-id ID --client-key JWK_FILE
                --subject-token-file FILE)
      Exchange a parent's IdP token for a child app's credential (aoa.v1.Issuer/Delegate).
      Example: aoa delegate --dev --child dashboards --env prod --scope read:metrics

  aoa revoke (--jti JTI | --grant ID | --app APP --env ENV | --subject SUB | --kid KID) [--reason TEXT]
             [--json] (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL --client-id ID
             --client-key JWK_FILE)
      Revoke a token and its descendants, a grant, an app's credentials in an environment, everything a
      subject delegated, or everything a key signed (aoa.v1.Revoker/Revoke). Idempotent.
      Example: aoa revoke --dev --app dashboards --env prod --reason "leaked"

  aoa revocations list [--kind jti|app|sub|kid|grant] [--env ENV --app APP] [--jti JTI] [--json]
             (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL --client-id ID --client-key JWK_FILE)
      List the revocations in force (aoa.v1.Revoker/ListRevocations).

  With --dev, revoke and revocations sign as the admin client in <data-dir>/dev.json.

Exit codes: 0 ok, 1 failure, 2 usage, 3 refused (unauthenticated, permission denied, invalid
argument), 4 unavailable.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dev':
      return dev(rest);
    case 'delegate':
      return delegate(rest);
    case 'revoke':
      return revoke(rest);
    case 'revocations':
      return revocations(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return command === undefined ? EXIT.usage : EXIT.ok;
    default:
      process.stderr.write(`aoa: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return EXIT.usage;
  }
}

async function dev(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string', default: '.aoa' },
      'log-level': { type: 'string', default: 'warn' },
    },
  });
  let running: Awaited<ReturnType<typeof startDev>>;
  try {
    running = await startDev({ dataDir: values['data-dir'], logLevel: values['log-level'] });
  } catch (error) {
    if (error instanceof MissingNatsServer) {
      process.stderr.write(`aoa dev: ${error.message}\n`);
      return EXIT.failure;
    }
    throw error;
  }
  process.stdout.write(devGuide(running.facts));
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('\nstopping aoa dev...\n');
  await running.stop();
  return EXIT.ok;
}

async function delegate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dev: { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: '.aoa' },
      grpc: { type: 'string' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-key': { type: 'string' },
      'subject-token-file': { type: 'string' },
      child: { type: 'string' },
      env: { type: 'string' },
      scope: { type: 'string', multiple: true, default: [] },
      audience: { type: 'string', multiple: true, default: [] },
      ttl: { type: 'string', default: '0' },
      'holder-jkt': { type: 'string' },
      bearer: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.child || !values.env || values.scope.length === 0) {
    process.stderr.write('aoa delegate: --child, --env and at least one --scope are required\n');
    return EXIT.usage;
  }
  let target: { grpc: string; issuer: string; clientId: string; clientJwk: JWK; subjectToken: string };
  if (values.dev) {
    const facts = await readDevFacts(join(values['data-dir'], 'dev.json'));
    target = {
      grpc: facts.issuer.grpc,
      issuer: facts.issuer.issuer,
      clientId: facts.orchestrator.clientId,
      clientJwk: facts.orchestrator.privateJwk as JWK,
      subjectToken: await devIdpToken(facts),
    };
  } else {
    const missing = ['grpc', 'issuer', 'client-id', 'client-key', 'subject-token-file'].filter(
      (k) => !values[k as keyof typeof values],
    );
    if (missing.length > 0) {
      process.stderr.write(
        `aoa delegate: without --dev, also give ${missing.map((m) => `--${m}`).join(', ')}\n`,
      );
      return EXIT.usage;
    }
    target = {
      grpc: values.grpc as string,
      issuer: values.issuer as string,
      clientId: values['client-id'] as string,
      clientJwk: JSON.parse(await readFile(values['client-key'] as string, 'utf8')) as JWK,
      subjectToken: (await readFile(values['subject-token-file'] as string, 'utf8')).trim(),
    };
  }
  try {
    const outcome = await delegateOnce({
      ...target,
      child: values.child,
      env: values.env,
      scopes: values.scope,
      audience: values.audience,
      ttlSeconds: Number(values.ttl),
      holderJkt: values.bearer ? null : values['holder-jkt'],
    });
    const r = outcome.response;
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ ...r, holderPrivateJwk: outcome.holderPrivateJwk }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(
        `issued ${r.tokenType} token for ${values.child} in ${values.env}\n  jti      ${r.jti}\n  scopes   ${r.scopes.join(' ')}\n` +
          `  expires  ${new Date(r.expiresAt * 1000).toISOString()}\n  rule     ${r.rule}\n  depth    ${r.depth}\n` +
          `${outcome.holderPrivateJwk ? '  holder   a fresh Ed25519 key was generated (see --json)\n' : ''}`,
      );
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof RpcError) {
      process.stderr.write(`aoa delegate: refused: ${error.message}\n`);
      return error.code === status.UNAVAILABLE ? EXIT.unavailable : EXIT.refused;
    }
    throw error;
  }
}

async function revoke(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...CALLER_OPTIONS,
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
  const caller = await resolveCaller('revoke', values, (f) => f.revoker?.grpc);
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

async function revocations(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'list') {
    process.stderr.write(`aoa revocations: unknown subcommand ${JSON.stringify(sub ?? '')} (try list)\n`);
    return EXIT.usage;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      ...CALLER_OPTIONS,
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
  const caller = await resolveCaller('revocations list', values, (f) => f.revoker?.grpc);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`aoa: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(EXIT.failure);
  },
);
