import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '@aoa/core';
import type { ClientConfig, Policy } from '@aoa/policy';
import fc from 'fast-check';
import { type CallerProof, certifiedClient } from './delegate.js';

// A certificate authenticates one client: the one whose registered URI it carries, and never a client
// whose URI it lacks, nor anyone when it names two or the call's client-id names another, nor anyone
// when the call sent its own proof.
const URIS = ['spiffe://td/a', 'spiffe://td/b', 'spiffe://td/c', 'spiffe://other/a'];

const client = (id: string, uri: string | undefined): ClientConfig => ({
  id,
  admin: false,
  keys: [],
  federated: undefined,
  tlsClientAuthSanUri: uri,
  mayPresent: [],
  dpopBoundAccessTokens: false,
  owners: [],
});

/** Policies whose clients register distinct URIs (as the loader enforces) or none. */
const policyArb: fc.Arbitrary<Policy> = fc
  .uniqueArray(fc.option(fc.constantFrom(...URIS), { nil: undefined }), {
    minLength: 1,
    maxLength: 4,
    selector: (uri) => uri ?? Symbol(),
  })
  .map((uris) => ({ clients: uris.map((uri, i) => client(`c${i}`, uri)) }) as unknown as Policy);

const proofArb: fc.Arbitrary<CallerProof> = fc.record({
  clientAssertion: fc.option(fc.constant('an.assertion.jwt'), { nil: undefined }),
  dpop: fc.option(fc.constant({ proof: 'a.dpop.proof', htm: 'POST', htu: 'https://issuer/x' }), {
    nil: undefined,
  }),
  certificateUris: fc.subarray(URIS),
  clientId: fc.option(fc.constantFrom('c0', 'c1', 'c2', 'c3'), { nil: undefined }),
});

describe('certifiedClient (RFC 8705 tls_client_auth), as a property', () => {
  it('names the one client whose URI the certificate carries, and no one else', () => {
    fc.assert(
      fc.property(policyArb, proofArb, (policy, proof) => {
        const uris = proof.certificateUris ?? [];
        const named = policy.clients.filter(
          (c) => c.tlsClientAuthSanUri && uris.includes(c.tlsClientAuthSanUri),
        );
        let outcome: ClientConfig | undefined | AppError;
        try {
          outcome = certifiedClient(policy, proof);
        } catch (error) {
          assert.ok(error instanceof AppError && error.code === 'unauthenticated', String(error));
          outcome = error;
        }
        if (proof.clientAssertion || proof.dpop || uris.length === 0) {
          assert.equal(
            outcome,
            undefined,
            'a proof in metadata, or no certificate: the certificate counts for nothing',
          );
        } else if (named.length === 1 && (proof.clientId === undefined || proof.clientId === named[0]?.id)) {
          assert.equal(outcome, named[0]);
        } else {
          assert.ok(outcome instanceof AppError, 'no client, two, or another than client-id names: refused');
        }
      }),
      { numRuns: 500 },
    );
  });
});
