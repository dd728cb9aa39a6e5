// The floor: a bare grpc-js server serving the same generated aoa.v1.Issuer definition, whose Delegate
// verifies one Ed25519 client assertion (jose jwtVerify, public key imported once), signs one token of
// the same shape with node:crypto (core's signCompact) and publishes one event of the audit event's
// size to a JetStream stream of the audit stream's settings, answering once it is acknowledged (core's
// StreamPublisher, aoa's cheapest publish). That is #15's "same crypto plus one JetStream publish".
// Nothing else: no policy, no replay claim, no subject token.
// With BENCH_TLS_DIR (server.pem, server-key.pem, ca.pem) it serves mutual TLS instead, and its
// Delegate checks the client certificate's URI SAN against BENCH_CLIENT_URI in place of an assertion.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientCertificateUris, randomId, type SigningKey, StreamPublisher, signCompact } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { importJWK, jwtVerify } from 'jose';
import { announce, requiredEnv, stopOn } from './child.js';

// Imported once, the way jose documents it (a CryptoKey in jose 6).
const clientKey = await importJWK(JSON.parse(requiredEnv('BENCH_CLIENT_JWK')), 'EdDSA');
const clientId = requiredEnv('BENCH_CLIENT_ID');
const issuerUrl = 'http://127.0.0.1:1';
const signingKey: SigningKey = {
  kid: 'bare-1',
  alg: 'EdDSA',
  privateKey: generateKeyPairSync('ed25519').privateKey,
};

const tlsDir = process.env.BENCH_TLS_DIR;

const nc = await connect({ servers: requiredEnv('BENCH_NATS_URL') });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({
  name: `BENCH_BARE_${process.pid}`,
  subjects: [`bench.bare.${process.pid}.>`],
  storage: 'file' as never,
  discard: 'new' as never,
  duplicate_window: 120e9,
});
const events = new StreamPublisher(nc);
const eventSubject = `bench.bare.${process.pid}.delegation.issued`;
const clientUri = tlsDir ? requiredEnv('BENCH_CLIENT_URI') : undefined;

/** Why the caller is not the client, or undefined: its certificate with mutual TLS, its assertion otherwise. */
async function callerProblem(call: ServerUnaryCall<pb.DelegateRequest, pb.DelegateResponse>) {
  if (clientUri) {
    return clientCertificateUris(call).includes(clientUri) ? undefined : 'not the client certificate';
  }
  const assertion = call.metadata.get('client-assertion')[0];
  if (typeof assertion !== 'string') return 'no assertion';
  try {
    await jwtVerify(assertion, clientKey, {
      algorithms: ['EdDSA'],
      issuer: clientId,
      subject: clientId,
      requiredClaims: ['exp', 'jti', 'aud'],
      clockTolerance: 5,
    });
    return undefined;
  } catch (error) {
    return String(error);
  }
}

const handlers: pb.IssuerServer = {
  delegate: async (
    call: ServerUnaryCall<pb.DelegateRequest, pb.DelegateResponse>,
    callback: sendUnaryData<pb.DelegateResponse>,
  ) => {
    const problem = await callerProblem(call);
    if (problem) return callback({ code: status.UNAUTHENTICATED, details: problem });
    const { request } = call;
    const nowMs = Date.now();
    const iat = Math.floor(nowMs / 1000);
    const jti = randomId();
    const claims = {
      iss: issuerUrl,
      sub: 'idp:corp:argocd-sa',
      aud: ['https://dashboards.internal', 'https://metrics.internal'],
      client_id: `client:${clientId}`,
      env: request.environment,
      scope: request.scopes.join(' '),
      iat,
      nbf: iat,
      exp: iat + 900,
      jti,
      act: { sub: `app:${request.child}` },
      aoa_lineage: [],
      aoa_iat_ms: nowMs,
      aoa_max_depth: 2,
      aoa_rule: 'deployers-dashboards',
      cnf: { jkt: request.holderJkt },
    };
    const accessToken = signCompact({ typ: 'at+jwt' }, claims, signingKey);
    const event = {
      id: randomId(),
      type: 'delegation.issued',
      time: new Date(nowMs).toISOString(),
      source: 'bare',
      subject: jti,
      data: { ...claims, scopes_requested: request.scopes, kid: signingKey.kid },
    };
    try {
      await events.publish(eventSubject, JSON.stringify(event), { msgID: event.id });
    } catch (error) {
      return callback({ code: status.UNAVAILABLE, details: String(error) });
    }
    callback(null, {
      accessToken,
      tokenType: 'DPoP',
      expiresAt: claims.exp,
      scopes: request.scopes,
      jti,
      issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      rule: claims.aoa_rule,
      depth: 0,
    });
  },
  delegateBatch: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: 'not in the bench' }),
  introspect: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: 'not in the bench' }),
  rotateKeys: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: 'not in the bench' }),
};

function serverCredentials(): ServerCredentials {
  if (!tlsDir) return ServerCredentials.createInsecure();
  const file = (name: string) => readFileSync(join(tlsDir, name));
  return ServerCredentials.createSsl(
    file('ca.pem'),
    [{ cert_chain: file('server.pem'), private_key: file('server-key.pem') }],
    true,
  );
}

const server = new Server({ 'grpc.max_receive_message_length': 256 * 1024 });
server.addService(pb.IssuerService, handlers);
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', serverCredentials(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
stopOn(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  events.close();
  await nc.close();
});
announce({ grpcPort: port });
