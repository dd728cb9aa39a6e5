import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signClientAssertion } from '@aoa/sdk';
import {
  type CallOptions,
  type ChannelCredentials,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { JWK } from 'jose';
import { RpcError, readDevFacts } from './delegate.js';
import type { DevFacts } from './dev.js';

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2, refused: 3, unavailable: 4 } as const;

/** A registered client calling one service, proving itself with RFC 7523 client assertions. */
export interface ServiceCaller {
  /** `host:port` of the service's gRPC endpoint. */
  grpc: string;
  /** The issuer identifier: client assertions name it as `aud`. */
  issuer: string;
  clientId: string;
  clientJwk: JWK;
  /** The CA that signed the service's certificate: the call uses TLS. Plaintext without it. */
  caFile?: string | undefined;
}

/** A client certificate and its private key (PEM files), for mutual TLS. */
export interface ClientCertificate {
  certFile: string;
  keyFile: string;
}

/**
 * A registered client calling a service over mutual TLS: its certificate proves it (RFC 8705), and
 * its calls carry no client assertion.
 */
export interface CertifiedCaller {
  grpc: string;
  issuer: string;
  certificate: ClientCertificate;
  caFile?: string | undefined;
}

/**
 * TLS trusting `caFile` when given (the system's CAs otherwise), presenting `certificate` when given;
 * plaintext with neither (`aoa dev` on loopback).
 */
export function channelCredentials(
  caFile: string | undefined,
  certificate?: ClientCertificate,
): ChannelCredentials {
  const ca = caFile ? readFileSync(caFile) : null;
  if (certificate) {
    return credentials.createSsl(ca, readFileSync(certificate.keyFile), readFileSync(certificate.certFile));
  }
  return ca ? credentials.createSsl(ca) : credentials.createInsecure();
}

/** The flags every command that calls a service as a registered client takes. */
export const CALLER_OPTIONS = {
  dev: { type: 'boolean', default: false },
  'data-dir': { type: 'string', default: '.aoa' },
  grpc: { type: 'string' },
  issuer: { type: 'string' },
  'client-id': { type: 'string' },
  'client-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export type CallerFlags = { dev: boolean; 'data-dir': string } & Partial<
  Record<'grpc' | 'issuer' | 'client-id' | 'client-key' | 'tls-ca', string | undefined>
>;

/**
 * The service to call and the client to call it as: with `--dev`, the dev admin client and the
 * endpoint `pick` chooses from `.aoa/dev.json`; otherwise the flags. Undefined (after printing what is
 * missing) when a flag is missing.
 */
export async function resolveCaller(
  command: string,
  values: CallerFlags,
  pick: (facts: DevFacts) => string | undefined,
): Promise<ServiceCaller | undefined> {
  if (values.dev) {
    const facts = await readDevFacts(join(values['data-dir'], 'dev.json'));
    const grpc = pick(facts);
    if (!grpc) throw new Error(`this aoa dev does not run what aoa ${command} calls: restart it`);
    return {
      grpc,
      issuer: facts.issuer.issuer,
      clientId: facts.admin.clientId,
      clientJwk: facts.admin.privateJwk as JWK,
    };
  }
  const missing = (['grpc', 'issuer', 'client-id', 'client-key'] as const).filter((k) => !values[k]);
  if (missing.length > 0) {
    process.stderr.write(
      `aoa ${command}: without --dev, also give ${missing.map((m) => `--${m}`).join(', ')}\n`,
    );
    return undefined;
  }
  return {
    grpc: values.grpc as string,
    issuer: values.issuer as string,
    clientId: values['client-id'] as string,
    clientJwk: JSON.parse(await readFile(values['client-key'] as string, 'utf8')) as JWK,
    caFile: values['tls-ca'],
  };
}

/** The flags of a command whose service also accepts a client certificate (RFC 8705). */
export const CERTIFIED_CALLER_OPTIONS = {
  ...CALLER_OPTIONS,
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

/**
 * {@link resolveCaller}, or with `--tls-cert` and `--tls-key` a caller whose certificate proves it over
 * mutual TLS (no `--client-id`/`--client-key`, no assertion). Undefined (after printing why) when a
 * flag is missing or only one of the pair is given.
 */
export async function resolveCertifiedCaller(
  command: string,
  values: CallerFlags & Partial<Record<'tls-cert' | 'tls-key', string | undefined>>,
  pick: (facts: DevFacts) => string | undefined,
): Promise<ServiceCaller | CertifiedCaller | undefined> {
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  if (!certFile && !keyFile) return resolveCaller(command, values, pick);
  if (!certFile || !keyFile || values.dev) {
    process.stderr.write(
      `aoa ${command}: a client certificate needs both --tls-cert and --tls-key, and no --dev\n`,
    );
    return undefined;
  }
  const missing = (['grpc', 'issuer'] as const).filter((k) => !values[k]);
  if (missing.length > 0) {
    process.stderr.write(`aoa ${command}: also give ${missing.map((m) => `--${m}`).join(', ')}\n`);
    return undefined;
  }
  return {
    grpc: values.grpc as string,
    issuer: values.issuer as string,
    certificate: { certFile, keyFile },
    caFile: values['tls-ca'],
  };
}

/** Prints a gRPC refusal and maps it to an exit code; anything else is rethrown. */
export function refusal(command: string, error: unknown): number {
  if (error instanceof RpcError) {
    process.stderr.write(`aoa ${command}: refused: ${error.message}\n`);
    return error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED
      ? EXIT.unavailable
      : EXIT.refused;
  }
  throw error;
}

/** gRPC metadata carrying a fresh single-use client assertion for `caller`. */
export async function assertionMetadata(caller: ServiceCaller): Promise<Metadata> {
  const metadata = new Metadata();
  metadata.set(
    'client-assertion',
    await signClientAssertion(caller.clientId, caller.clientJwk, caller.issuer),
  );
  return metadata;
}

/** A generated unary stub called with metadata and options (ts-proto's client shape). */
export type UnaryInvoke<C, Res> = (
  client: C,
  metadata: Metadata,
  options: Partial<CallOptions>,
  done: (error: ServiceError | null, value: Res) => void,
) => unknown;

/**
 * One unary call as `caller`, on a fresh channel closed afterwards, with a fresh client assertion (none
 * for a caller with a certificate) and a deadline `timeoutMs` away (10 s by default). A refusal rejects
 * with `RpcError` (gRPC code and public message).
 */
export async function callAs<C extends { close(): void }, Res>(
  caller: ServiceCaller | CertifiedCaller,
  makeClient: (address: string, channel: ChannelCredentials) => C,
  invoke: UnaryInvoke<C, Res>,
  timeoutMs = 10_000,
): Promise<Res> {
  const certificate = 'certificate' in caller ? caller.certificate : undefined;
  const client = makeClient(caller.grpc, channelCredentials(caller.caFile, certificate));
  try {
    const metadata = 'certificate' in caller ? new Metadata() : await assertionMetadata(caller);
    return await new Promise<Res>((resolve, reject) => {
      invoke(client, metadata, { deadline: Date.now() + timeoutMs }, (error, value) =>
        error ? reject(RpcError.of(error)) : resolve(value),
      );
    });
  } finally {
    client.close();
  }
}
