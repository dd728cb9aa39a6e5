import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeCertificates, signClientCertificate } from '../../test/support/certificates.js';

/** The URI SAN of argocd's client certificate in the benches' mutual-TLS targets (a SPIFFE ID). */
export const ARGOCD_URI = 'spiffe://aoa.bench/ns/argocd/sa/argocd-application-controller';

/** What a bench's TLS targets need, from {@link makeBenchCertificates}. */
export interface BenchCertificates {
  /** The CA (PEM) that signed every certificate below. */
  ca: Buffer;
  /** argocd's client certificate and key (PEM), its URI SAN {@link ARGOCD_URI}. */
  argocd: { cert: Buffer; key: Buffer };
  /** The environment of an issuer serving TLS and verifying client certificates against `ca`. */
  issuerEnv: Record<string, string>;
}

/**
 * One CA in `dir` for every TLS target of a bench: `server.pem` (127.0.0.1) and argocd's client
 * certificate `argocd.pem`, each with its `-key.pem`, and `ca.pem`.
 */
export function makeBenchCertificates(dir: string): BenchCertificates {
  makeCertificates(dir);
  signClientCertificate(dir, 'argocd', ARGOCD_URI);
  const file = (name: string) => join(dir, name);
  return {
    ca: readFileSync(file('ca.pem')),
    argocd: { cert: readFileSync(file('argocd.pem')), key: readFileSync(file('argocd-key.pem')) },
    issuerEnv: {
      AOA_TLS_CERT_FILE: file('server.pem'),
      AOA_TLS_KEY_FILE: file('server-key.pem'),
      AOA_ISSUER_TLS_CLIENT_CA_FILE: file('ca.pem'),
    },
  };
}

/** The test policy with argocd also authenticated by its client certificate (RFC 8705). */
export const withArgocdCertificate = (policy: string): string =>
  policy.replace('  - id: argocd\n', `  - id: argocd\n    tls_client_auth_san_uri: ${ARGOCD_URI}\n`);
