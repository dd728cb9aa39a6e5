import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { status } from '@grpc/grpc-js';
import type { JWK } from 'jose';
import { agentCommand } from './agent.js';
import { auditCommand } from './audit.js';
import { CERTIFIED_CALLER_OPTIONS, EXIT, resolveCertifiedCaller } from './caller.js';
import {
  type DelegateCaller,
  delegateBatchOnce,
  delegateOnce,
  devIdpToken,
  RpcError,
  readDevFacts,
} from './delegate.js';
import { devTokenCommand } from './dev-token.js';
import { grantsCommand } from './grants.js';
import { keysCommand } from './keys.js';
import { policyCommand } from './policy-command.js';
import { revocationsCommand, revokeCommand } from './revoke-command.js';
import { statusCommand } from './status.js';

const HELP = `aoa — App of Apps OAuth

Usage:
  aoa dev [--data-dir .aoa] [--log-level warn]
      Run NATS, a development IdP and the four services (issuer, revoker, rotator, auditor) on loopback.
      Writes every URL and demo credential to <data-dir>/dev.json. Also runs vendor-shaped IdPs
      (GitHub Actions, GitLab CI, Kubernetes, Terraform Cloud, Okta, Entra ID) for the docs/examples/.

  aoa dev token --profile github-actions|gitlab|kubernetes|terraform-cloud|okta|entra [--claim NAME=VALUE ...]
               [--claim NAME:=JSON ...] [--audience A] [--data-dir .aoa]
      Print a token of that vendor's shape from the running aoa dev: what a GitHub Actions or GitLab CI
      job, an Argo CD pod, a Terraform Cloud run or an Okta / Entra ID sign-in would present. --claim replaces
      one claim of the dev workload's (a string; := takes JSON).
      Example: aoa dev token --profile terraform-cloud --claim terraform_run_phase=plan

  aoa delegate --child APP [--child APP ...] --env ENV --scope S [--scope S ...] [--audience A ...] [--ttl SECONDS]
               [--holder-jkt JKT | --bearer] [--json]
               (--dev [--data-dir .aoa] [--subject-token-file FILE] | --grpc HOST:PORT --issuer URL
                (--client-id ID --client-key JWK_FILE | --tls-cert PEM --tls-key PEM) --subject-token-file FILE)
      Exchange a parent's IdP token for a child app's credential (aoa.v1.Issuer/Delegate). With --dev,
      --subject-token-file presents that token (e.g. from aoa dev token --profile okta) as the orchestrator.
      --tls-cert and --tls-key: the client's certificate proves it over mutual TLS (RFC 8705; the issuer
      runs with AOA_ISSUER_TLS_CLIENT_CA_FILE), and no client assertion is sent.
      Several --child: one aoa.v1.Issuer/DelegateBatch call, a fresh key per child, one line (or JSON
      entry) per child; exit 0 when all were issued, 3 when any was refused.
      Example: aoa delegate --dev --child dashboards --env prod --scope read:metrics

  aoa revoke (--jti JTI | --grant ID | --app APP --env ENV | --subject SUB | --kid KID) [--reason TEXT]
             [--json] (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL
             (--client-id ID --client-key JWK_FILE | --tls-cert PEM --tls-key PEM))
      Revoke a token and its descendants, a grant, an app's credentials in an environment, everything a
      subject delegated, or everything a key signed (aoa.v1.Revoker/Revoke). Idempotent.
      --tls-cert and --tls-key: the client's certificate proves it over mutual TLS (RFC 8705; the
      revoker runs with AOA_REVOKER_TLS_CLIENT_CA_FILE), and no client assertion is sent.
      Example: aoa revoke --dev --app dashboards --env prod --reason "leaked"

  aoa revocations list [--kind jti|app|sub|kid|grant] [--env ENV --app APP] [--jti JTI] [--json]
             (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL
             (--client-id ID --client-key JWK_FILE | --tls-cert PEM --tls-key PEM))
      List the revocations in force (aoa.v1.Revoker/ListRevocations).

  aoa revocations rebuild [--dry-run] [--json] (--dev [--data-dir .aoa] | --grpc AUDITOR_HOST:PORT
             --issuer URL --client-id ID --client-key JWK_FILE --nats URL
             [--nats-user revoker --nats-password-file FILE])
      Rebuild KV aoa_revocations from the audit store after the bucket was lost: every revocation
      younger than the bucket's max age is written back with its original record (idempotent).

  aoa grants list [--env ENV] [--app APP] | create --sub idp:NS:SUB --app APP --env ENV --scope S ...
             [--audience A ...] --ttl SECONDS [--expires-in 30d | --expires-at TIME] [--parent-client ID]
             | delete ID | restore ID | rotate ID
             [--json] (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL --client-id ID --client-key JWK_FILE)
      Standing grants on the rotator (aoa.v1.Rotator): list, create, delete, restore a revoked one, rotate now.
      Example: aoa grants create --dev --sub idp:dev:orchestrator --app dashboards --env prod
               --scope read:metrics --ttl 300 --expires-in 7d

  aoa agent token create (--grant ID | --app APP --env ENV) [--ttl SECONDS] [--json]
             (--dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL --client-id ID --client-key JWK_FILE)
      A one-time join token for a grant (aoa.v1.Rotator/CreateJoinToken), printed alone on stdout.
      Example: aoa agent token create --dev --app dashboards --env prod

  aoa agent --out FILE --key-dir DIR --agent-id ID
            [--join-token TOKEN | --join-token-file FILE | --attestation-file FILE [--grant NAME]]
            [--rotate-keys] [--audience A ...] [--subject-prefix aoa] [--log-level info]
            (--dev [--data-dir .aoa] | --nats URL [--nats-user U --nats-password-file F] [--nats-ca-file CA]
             --rotator HOST:PORT --issuer URL)
      The agent sidecar: enrols once (keys and enrolment kept in DIR, mode 0700/0600; a restart needs
      no join token), then writes each verified credential to FILE atomically (mode 0600) and removes
      FILE when it expires unreplaced, is revoked, or the agent stops. Stops cleanly on SIGINT/SIGTERM.
      In a pod, --attestation-file (its projected service-account token, audience the kubernetes IdP's)
      enrols with no join token into the policy grant whose attest names the pod's service account.
      Example: aoa agent --dev --agent-id web-1 --key-dir .aoa/agent-web-1 --out /tmp/dashboards.token

  With --dev, revoke, revocations, grants and agent token create sign as the admin client in
  <data-dir>/dev.json. Without --dev, --tls-ca FILE (the CA that signed the service's certificate)
  makes any command's gRPC call use TLS; aoa dev itself is plaintext on loopback.

  aoa status [--dev [--data-dir .aoa]] [--service NAME=URL ...] [--nats URL] [--json]
      Probe every service's /healthz and /readyz and NATS (JetStream), 2 s each, all at once; exit 0
      when everything is ready, 4 otherwise. Without --dev or --service: the default local ports
      (issuer 7402, revoker 7412, rotator 7422, auditor 7432, NATS 4222).
      Example: aoa status --dev

  aoa policy check FILE [--revocation-max-age 24h] [--json]
      Validate a policy as the services load it; print every problem, one per line (exit 1).
  aoa policy explain FILE --principal idp:NS:SUB [--group G ...] --child APP --env ENV --scope S ...
             [--audience A ...] [--ttl SECONDS] [--bearer] [--json]
      Decide a root delegation offline: allowed (rule, scopes, audience, ttl; exit 0) or denied (the
      reason; exit 3).
      Example: aoa policy explain policy.yaml --principal idp:corp:alice --child dashboards --env prod
               --scope read:metrics

  aoa keys list (--dev [--data-dir .aoa] | --nats URL) [--json]
      The issuer's published keys (KV aoa_keys, read-only): active, standby, retired.

  aoa keys rotate [--now] [--reason TEXT] [--json] (--dev [--data-dir .aoa] | --grpc HOST:PORT
             --issuer URL --client-id ID --client-key JWK_FILE)
      Emergency signing-key rotation (aoa.v1.Issuer/RotateKeys, administrators): the published standby
      signs at once, every standing grant is re-minted and delivered under it, then the old kid is
      revoked. --now (a known compromise) revokes the old kid first and accepts the gap.
      Example: aoa keys rotate --dev --reason "drill"

  aoa audit query [--since 1h|TIME] [--until 1h|TIME] [--type T ...] [--app APP] [--env ENV]
             [--subject S] [--jti JTI] [--outcome issued|denied|...] [--limit N] [--json]
  aoa audit tail [--type T ...] [--app APP] [--env ENV] [--since 1m|TIME] [--json]
  aoa audit lineage JTI [--json]
  aoa audit verify [--json]
  aoa audit creep [--since 1h|TIME] [--app APP] [--env ENV] [--json]
  aoa audit unused [--app APP] [--env ENV] [--json]
             (each: --dev [--data-dir .aoa] | --grpc HOST:PORT --issuer URL --client-id ID
              --client-key JWK_FILE of an admin client)
      Read the audit log (aoa.v1.Auditor): query stored events; tail follows new ones (Ctrl-C stops);
      lineage draws the chain above a token and the tree below it; verify checks the hash chain
      against the signed checkpoints (exit 1 listing every problem); creep lists privilege creep alerts;
      unused lists, per app and per live grant, the scopes no verifier has reported a request needing.
      Examples: aoa audit query --dev --since 1h --app jobs --env prod --type delegation.issued
                aoa audit lineage --dev 3q2-7Jd9... ; aoa audit verify --dev ; aoa audit creep --dev
                aoa audit unused --dev --env prod

Exit codes: 0 ok, 1 failure, 2 usage, 3 refused (unauthenticated, permission denied, invalid
argument), 4 unavailable.
`;

/** The HELP blocks of one command (`aoa grants --help`), with the exit codes. */
function helpFor(command: string): string | undefined {
  const blocks = HELP.split('\n\n')
    .map((block) => block.replace(/^Usage:\n/, ''))
    .filter((block) => block.startsWith(`  aoa ${command} `));
  if (blocks.length === 0) return undefined;
  const exitCodes = HELP.slice(HELP.indexOf('Exit codes:'));
  return `Usage:\n${blocks.join('\n\n')}\n\n${exitCodes}`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const help = command && (rest.includes('--help') || rest.includes('-h')) ? helpFor(command) : undefined;
  if (help) {
    process.stdout.write(help);
    return EXIT.ok;
  }
  switch (command) {
    case 'dev':
      return dev(rest);
    case 'delegate':
      return delegate(rest);
    case 'revoke':
      return revokeCommand(rest);
    case 'revocations':
      return revocationsCommand(rest);
    case 'grants':
      return grantsCommand(rest);
    case 'agent':
      return agentCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'policy':
      return policyCommand(rest);
    case 'keys':
      return keysCommand(rest);
    case 'audit':
      return auditCommand(rest);
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
  if (args[0] === 'token') return devTokenCommand(args.slice(1));
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string', default: '.aoa' },
      'log-level': { type: 'string', default: 'warn' },
    },
  });
  // Loaded only here: the dev plane imports all four services, which every other command can skip.
  const { devGuide, startDev } = await import('./dev.js');
  const { MissingNatsServer } = await import('./dev-nats.js');
  let running: Awaited<ReturnType<typeof startDev>>;
  try {
    running = await startDev({
      dataDir: values['data-dir'],
      logLevel: values['log-level'],
      progress: (step) => process.stderr.write(`aoa dev: starting ${step}...\n`),
    });
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
      ...CERTIFIED_CALLER_OPTIONS,
      'subject-token-file': { type: 'string' },
      child: { type: 'string', multiple: true, default: [] },
      env: { type: 'string' },
      scope: { type: 'string', multiple: true, default: [] },
      audience: { type: 'string', multiple: true, default: [] },
      ttl: { type: 'string', default: '0' },
      'holder-jkt': { type: 'string' },
      bearer: { type: 'boolean', default: false },
    },
  });
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) {
    process.stderr.write('aoa delegate: a client certificate needs both --tls-cert and --tls-key\n');
    return EXIT.usage;
  }
  if (values.child.length === 0 || !values.env || values.scope.length === 0) {
    process.stderr.write('aoa delegate: --child, --env and at least one --scope are required\n');
    return EXIT.usage;
  }
  if (values.child.length > 1 && values['holder-jkt']) {
    process.stderr.write(
      'aoa delegate: --holder-jkt names one key: with several --child, each gets a fresh one\n',
    );
    return EXIT.usage;
  }
  let target: DelegateCaller & { subjectToken: string };
  if (values.dev) {
    const facts = await readDevFacts(join(values['data-dir'], 'dev.json'));
    target = {
      grpc: facts.issuer.grpc,
      issuer: facts.issuer.issuer,
      clientId: facts.orchestrator.clientId,
      clientJwk: facts.orchestrator.privateJwk as JWK,
      subjectToken: values['subject-token-file']
        ? (await readFile(values['subject-token-file'], 'utf8')).trim()
        : await devIdpToken(facts),
    };
  } else {
    if (!values['subject-token-file']) {
      process.stderr.write('aoa delegate: without --dev, also give --subject-token-file\n');
      return EXIT.usage;
    }
    // With --tls-cert/--tls-key the certificate proves the client: no client id or key to sign with.
    const caller = await resolveCertifiedCaller('delegate', values, () => undefined);
    if (!caller) return EXIT.usage;
    target = { ...caller, subjectToken: (await readFile(values['subject-token-file'], 'utf8')).trim() };
  }
  try {
    if (values.child.length > 1) {
      return await delegateChildren(target, values);
    }
    const child = values.child[0] as string;
    const outcome = await delegateOnce({
      ...target,
      child,
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
        `issued ${r.tokenType} token for ${child} in ${values.env}\n  jti      ${r.jti}\n  scopes   ${r.scopes.join(' ')}\n` +
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

/** `aoa delegate` with several `--child`: one DelegateBatch; exit 0 when every child was issued, 3 otherwise. */
async function delegateChildren(
  target: DelegateCaller & { subjectToken: string },
  values: {
    child: string[];
    env?: string | undefined;
    scope: string[];
    audience: string[];
    ttl: string;
    bearer: boolean;
    json: boolean;
  },
): Promise<number> {
  const outcomes = await delegateBatchOnce({
    ...target,
    children: values.child,
    env: values.env as string,
    scopes: values.scope,
    audience: values.audience,
    ttlSeconds: Number(values.ttl),
    bearer: values.bearer,
  });
  if (values.json) process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
  else {
    for (const o of outcomes) {
      process.stdout.write(
        'issued' in o
          ? `issued ${o.issued.tokenType} token for ${o.child} in ${values.env}: jti ${o.issued.jti}, rule ${o.issued.rule}\n`
          : `refused ${o.child}: ${o.refused.code}: ${o.refused.message} [reason ${o.refused.reason}${o.refused.rule ? `, rule ${o.refused.rule}` : ''}]\n`,
      );
    }
  }
  return outcomes.every((o) => 'issued' in o) ? EXIT.ok : EXIT.refused;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`aoa: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(EXIT.failure);
  },
);
