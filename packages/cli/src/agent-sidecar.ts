import { readFile } from 'node:fs/promises';
import { connectNats, type Logger } from '@aoa/core';
import { rotator as pb } from '@aoa/proto';
import { type Agent, type AgentKeys, createAgent, enrolmentProof, generateAgentKeys } from '@aoa/sdk';
import { Metadata } from '@grpc/grpc-js';
import {
  type Enrolment,
  prepareKeyDir,
  publicJwk,
  readKeyDir,
  removeFile,
  writeFileAtomic,
  writeKeyDir,
} from './agent-files.js';
import { channelCredentials } from './caller.js';
import { RpcError } from './delegate.js';

/** Everything `aoa agent` runs with, validated by the command. */
export interface SidecarOptions {
  agentId: string;
  keyDir: string;
  out: string;
  natsUrl: string;
  natsUser?: string | undefined;
  natsPasswordFile?: string | undefined;
  /** The CA that signed the NATS server's certificate: TLS to NATS. */
  natsCaFile?: string | undefined;
  issuer: string;
  audience: string[];
  subjectPrefix: string;
  /** Needed to enrol: when the key directory holds no enrolment yet, or with `rotateKeys`. */
  enrol?: { rotator: string; by: EnrolCredential; caFile?: string | undefined } | undefined;
  rotateKeys: boolean;
}

/** The sidecar cannot start because of how it was invoked (exit code 2), e.g. no join token to enrol. */
export class SidecarUsageError extends Error {
  override readonly name = 'SidecarUsageError';
}

/**
 * What an enrolment is authenticated by: a one-time join token, or the pod's projected service-account
 * token (read from its file at enrolment: the kubelet refreshes it) and, when the account is attested
 * into several grants, the grant's name.
 */
export type EnrolCredential = { joinToken: string } | { attestationFile: string; grant?: string | undefined };

/** Calls `aoa.v1.Rotator/Enroll` with a join token, or with a pod attestation and a DPoP proof of `keys`. */
export async function enrolAgent(
  rotator: string,
  by: EnrolCredential,
  agentId: string,
  keys: { private: AgentKeys; public: AgentKeys },
  caFile?: string,
): Promise<pb.EnrollResponse> {
  const credential = 'joinToken' in by ? { joinToken: by.joinToken } : await attestation(by, keys.private);
  const client = new pb.RotatorClient(rotator, channelCredentials(caFile));
  try {
    return await new Promise<pb.EnrollResponse>((resolve, reject) => {
      client.enroll(
        pb.EnrollRequest.fromPartial({
          ...credential,
          agentId,
          encryptionJwk: JSON.stringify(keys.public.encryption),
          dpopJwk: JSON.stringify(keys.public.dpop),
        }),
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, value) => (error ? reject(RpcError.of(error)) : resolve(value)),
      );
    });
  } finally {
    client.close();
  }
}

async function attestation(
  by: { attestationFile: string; grant?: string | undefined },
  keys: AgentKeys,
): Promise<{ attestation: string; dpop: string; grant: string }> {
  const token = (
    await readFile(by.attestationFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new SidecarUsageError(`--attestation-file: cannot read ${by.attestationFile} (${error.code})`);
    })
  ).trim();
  if (token === '') throw new SidecarUsageError(`--attestation-file ${by.attestationFile} is empty`);
  return { attestation: token, dpop: await enrolmentProof(keys, token), grant: by.grant ?? '' };
}

/**
 * The keys and enrolment to run with: those in the key directory when it holds an enrolment for this
 * agent id (a restart needs no join token), else a fresh enrolment with the keys found there or, with
 * `rotateKeys` or none found, new ones; the directory is written only after the rotator accepted them.
 */
export async function ensureEnrolled(
  options: SidecarOptions,
  log: Logger,
): Promise<{ keys: AgentKeys; enrolment: Enrolment }> {
  await prepareKeyDir(options.keyDir);
  const held = await readKeyDir(options.keyDir);
  if (held.enrolment && held.enrolment.agentId !== options.agentId) {
    throw new SidecarUsageError(
      `--key-dir ${options.keyDir} belongs to agent ${held.enrolment.agentId}: give each agent its own`,
    );
  }
  if (held.keys && held.enrolment && !options.rotateKeys) {
    log.info({ grant: held.enrolment.grantId, jkt: held.enrolment.dpopJkt }, 'using the stored enrolment');
    return { keys: held.keys, enrolment: held.enrolment };
  }
  if (!options.enrol) {
    throw new SidecarUsageError(
      `${options.rotateKeys ? 'to re-enrol with new keys' : 'not enrolled yet'}: give --join-token, --join-token-file or --attestation-file, and --rotator`,
    );
  }
  const generated = options.rotateKeys || !held.keys ? await generateAgentKeys() : undefined;
  const keys = generated?.private ?? (held.keys as AgentKeys);
  const publicKeys = generated?.public ?? {
    encryption: publicJwk(keys.encryption),
    dpop: publicJwk(keys.dpop),
  };
  const answer = await enrolAgent(
    options.enrol.rotator,
    options.enrol.by,
    options.agentId,
    { private: keys, public: publicKeys },
    options.enrol.caFile,
  );
  const enrolment: Enrolment = {
    agentId: answer.agentId,
    grantId: answer.grantId,
    app: answer.child,
    env: answer.environment,
    dpopJkt: answer.dpopJkt,
  };
  await writeKeyDir(options.keyDir, keys, enrolment);
  log.info({ grant: enrolment.grantId, jkt: enrolment.dpopJkt, subject: answer.subject }, 'agent enrolled');
  return { keys, enrolment };
}

/**
 * Keeps `out` in step with the agent, one file operation at a time in event order: each accepted
 * credential written atomically, the file removed when the credential expires or is revoked. A failed
 * operation is logged and the next event tried. Returns a function that waits for pending operations.
 */
function mirrorToFile(agent: Agent, out: string, log: Logger): () => Promise<void> {
  let pending = Promise.resolve();
  const serially = (step: () => Promise<void>, failure: string) => {
    pending = pending.then(step).catch((error: unknown) => {
      log.error({ err: error instanceof Error ? error.message : String(error), out }, failure);
    });
  };
  const drop = (jti: string, why: string) =>
    serially(async () => {
      await removeFile(out);
      log.warn({ jti, why, out }, 'no valid credential');
    }, 'cannot remove the credential file');
  agent.on('rotated', (c) =>
    serially(async () => {
      await writeFileAtomic(out, c.token);
      const expiresAt = new Date(c.exp * 1000).toISOString();
      log.info({ jti: c.jti, expiresAt, grant: c.grantId, out }, 'credential written');
    }, 'cannot write the credential file'),
  );
  agent.on('expired', (e) => drop(e.jti, 'expired'));
  agent.on('revoked', (e) => drop(e.jti, `revoked (${e.key.split('.')[0]})`));
  return () => pending;
}

/**
 * Runs the sidecar until `stopped` resolves: enrols (or reuses the stored enrolment), holds the agent's
 * credential through the SDK and mirrors it into `out`: rewritten atomically (mode 0600) on every
 * accepted credential, removed when it expires unreplaced or is revoked, and when the sidecar stops,
 * so the file only ever holds a credential the agent still considers valid.
 */
export async function runSidecar(
  options: SidecarOptions,
  log: Logger,
  stopped: Promise<void>,
): Promise<void> {
  const { keys, enrolment } = await ensureEnrolled(options, log);
  await removeFile(options.out);
  const nc = await connectNats(
    {
      url: options.natsUrl,
      name: `aoa-agent-${options.agentId}`,
      user: options.natsUser,
      passwordFile: options.natsPasswordFile,
      tls: options.natsCaFile ? { caFile: options.natsCaFile } : undefined,
      // With its own NATS user (infra/nats/auth.conf AGENT_TEMPLATE) an agent may read only its own inbox.
      inboxPrefix: options.natsUser ? `_INBOX_AGENT_${options.agentId}` : undefined,
    },
    log,
  ).catch((error: unknown) => {
    throw new Error(`cannot connect to NATS at ${options.natsUrl}: ${(error as Error).message}`);
  });
  const agent = await createAgent({
    nats: nc,
    env: enrolment.env,
    app: enrolment.app,
    agentId: options.agentId,
    keys,
    issuer: options.issuer,
    audience: options.audience,
    subjectPrefix: options.subjectPrefix,
    logger: log,
  });
  const settled = mirrorToFile(agent, options.out, log);
  log.info({ agent: options.agentId, app: enrolment.app, env: enrolment.env }, 'waiting for credentials');
  await stopped;
  log.info('stopping');
  await agent.stop();
  await nc.drain();
  await settled();
  await removeFile(options.out);
}
