import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChannelCredentials, credentials, type ServiceError } from '@grpc/grpc-js';

const run = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A self-signed CA: `<name>.pem` and `<name>-key.pem` in `dir`. */
export function makeCa(dir: string, name: string): void {
  run(
    dir,
    'req',
    '-x509',
    ...P256,
    '-days',
    '1',
    '-subj',
    `/CN=aoa test ${name}`,
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.pem`,
  );
}

/**
 * A certificate signed by CA `ca` with the given OpenSSL extensions (one per line): `<name>.pem` and
 * `<name>-key.pem` in `dir`.
 */
export function signCertificate(dir: string, name: string, extensions: string, ca = 'ca'): void {
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  run(
    dir,
    'req',
    ...P256,
    '-subj',
    `/CN=aoa test ${name}`,
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.csr`,
  );
  run(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}-key.pem`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
}

/** A client certificate whose only SAN is `uri` (a SPIFFE ID, say), signed by CA `ca`. */
export function signClientCertificate(dir: string, name: string, uri: string, ca = 'ca'): void {
  signCertificate(dir, name, `subjectAltName=URI:${uri}\nextendedKeyUsage=clientAuth`, ca);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
export function makeCertificates(dir: string): void {
  makeCa(dir, 'ca');
  signCertificate(dir, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  signCertificate(dir, 'client', 'extendedKeyUsage=clientAuth');
}

/** gRPC channel credentials trusting CA `ca` of `dir`, presenting client certificate `name` (or none). */
export function tlsCredentials(dir: string, ca: string, name?: string): ChannelCredentials {
  const trusted = readFileSync(join(dir, `${ca}.pem`));
  return name
    ? credentials.createSsl(
        trusted,
        readFileSync(join(dir, `${name}-key.pem`)),
        readFileSync(join(dir, `${name}.pem`)),
      )
    : credentials.createSsl(trusted);
}

/** The gRPC error a call must end with: resolving fails the test. */
export const grpcRefusal = (promise: Promise<unknown>): Promise<ServiceError> =>
  promise.then(
    () => assert.fail('expected a refusal'),
    (error: ServiceError) => error,
  );
