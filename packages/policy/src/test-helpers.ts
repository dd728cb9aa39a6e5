import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { PolicyError } from './errors.js';
import { parsePolicy } from './load.js';
import type { Policy } from './types.js';

export const EXAMPLE_PATH = new URL('./fixtures/example.policy.yaml', import.meta.url).pathname;
export const exampleText = (): string => readFileSync(EXAMPLE_PATH, 'utf8');
export const examplePolicy = (): Policy => parsePolicy(exampleText(), EXAMPLE_PATH);

export const publicJwk = (
  type: 'ed25519' | 'p256' | 'rsa2048' | 'rsa1024' | 'p384',
): Record<string, unknown> => {
  const pair =
    type === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : type === 'p256' || type === 'p384'
        ? generateKeyPairSync('ec', { namedCurve: type === 'p256' ? 'P-256' : 'P-384' })
        : generateKeyPairSync('rsa', { modulusLength: type === 'rsa2048' ? 2048 : 1024 });
  return pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
};

/** A private JWK, to prove the loader refuses one. */
export const privateEd25519Jwk = (): Record<string, unknown> =>
  generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as Record<string, unknown>;

const ED_KEY = publicJwk('ed25519');

/** A small valid policy as plain data, for tests to break one piece at a time. */
// biome-ignore lint/suspicious/noExplicitAny: tests reach into the document freely to break it.
export const baseDocument = (): any => ({
  version: 1,
  limits: { max_token_ttl: '1h' },
  idps: [{ namespace: 'corp', issuer: 'https://idp.example.com', audience: 'aoa' }],
  clients: [
    {
      id: 'argocd',
      jwks: [{ ...ED_KEY, kid: 'k1' }],
      may_present: [{ idp: 'corp', subjects: ['argocd-sa'], groups: ['platform'] }],
    },
  ],
  roles: [
    {
      name: 'deployers',
      members: {
        groups: ['corp:platform'],
        subjects: ['idp:corp:alice'],
        clients: ['argocd'],
        apps: ['dashboards'],
      },
    },
  ],
  apps: [
    { name: 'dashboards', environments: ['prod', 'staging'], audiences: ['https://dashboards.internal'] },
    { name: 'jobs', environments: ['prod'], audiences: ['https://jobs.internal'] },
  ],
  rules: [
    {
      name: 'deployers-dashboards',
      role: 'deployers',
      children: ['dashboards'],
      environments: ['prod'],
      scopes: { prod: ['read:metrics'] },
      max_ttl: '15m',
      may_delegate: true,
      max_depth: 2,
    },
  ],
});

/** Parses a document (or text) as `policy.yaml` and returns its problems; fails if it loads. */
export function problemsOf(doc: unknown): string[] {
  const text = typeof doc === 'string' ? doc : stringify(doc);
  try {
    parsePolicy(text, '/etc/aoa/policy.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
  throw new Error('expected the policy to be refused');
}

/** The problems after one change to the base document. */
// biome-ignore lint/suspicious/noExplicitAny: see baseDocument.
export function problemsAfter(change: (doc: any) => void): string[] {
  const doc = baseDocument();
  change(doc);
  return problemsOf(doc);
}
