import { assertName } from './names.js';

/** NATS subject names under a configurable prefix (contract section 5). */
export class Subjects {
  constructor(readonly prefix: string = 'aoa') {
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
      throw new TypeError(`subject prefix ${JSON.stringify(prefix)} is not a plain NATS subject`);
    }
  }

  /** `aoa.audit.<type>`; types are dotted lowercase words. */
  audit(type: string): string {
    if (!/^[a-z0-9_]+(\.[a-z0-9_]+)*$/.test(type)) throw new TypeError(`bad audit type ${type}`);
    return `${this.prefix}.audit.${type}`;
  }

  /** `aoa.audit.batch`: one message carrying several events, each stored as its own row (contract 5). */
  auditBatch(): string {
    return `${this.prefix}.audit.batch`;
  }

  auditAll(): string {
    return `${this.prefix}.audit.>`;
  }

  creds(env: string, app: string, agent: string): string {
    return `${this.prefix}.creds.${assertName('environment', env)}.${assertName('app', app)}.${assertName('agent', agent)}`;
  }

  credsAll(): string {
    return `${this.prefix}.creds.>`;
  }

  revoked(env: string, app: string): string {
    return `${this.prefix}.revoked.${assertName('environment', env)}.${assertName('app', app)}`;
  }

  revokedAll(): string {
    return `${this.prefix}.revoked.all`;
  }

  /**
   * `aoa.usage.<env>.<app>`: a verifier's periodic report of the scopes requests actually needed from
   * tokens issued to that app (core NATS, best effort; the auditor keeps them for the unused-scope report).
   */
  usage(env: string, app: string): string {
    return `${this.prefix}.usage.${assertName('environment', env)}.${assertName('app', app)}`;
  }

  usageAll(): string {
    return `${this.prefix}.usage.>`;
  }

  issuerMint(): string {
    return `${this.prefix}.issuer.mint`;
  }

  /** Request/reply (queue group `rotator`): re-mint every active grant now, answer when delivered. */
  rotatorRemint(): string {
    return `${this.prefix}.rotator.remint`;
  }
}

/** Stream and bucket names (contract section 5). */
export const STREAMS = { audit: 'AOA_AUDIT', creds: 'AOA_CREDS' } as const;
export const BUCKETS = {
  revocations: 'aoa_revocations',
  keys: 'aoa_keys',
  signingKeys: 'aoa_signing_keys',
  grants: 'aoa_grants',
  replay: 'aoa_replay',
} as const;

/** The stream that holds a KV bucket. */
export const bucketStream = (bucket: string): string => `KV_${bucket}`;
