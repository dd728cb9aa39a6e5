import { makeCertificates, signClientCertificate } from '../../test/support/certificates.js';

/** The URI SAN of argocd's client certificate in the benches' mutual-TLS targets (a SPIFFE ID). */
export const ARGOCD_URI = 'spiffe://aoa.bench/ns/argocd/sa/argocd-application-controller';

/**
 * One CA in `dir` for every TLS target of a bench: `server.pem` (127.0.0.1) and argocd's client
 * certificate `argocd.pem`, each with its `-key.pem`, and `ca.pem`.
 */
export function makeBenchCertificates(dir: string): void {
  makeCertificates(dir);
  signClientCertificate(dir, 'argocd', ARGOCD_URI);
}

/** The test policy with argocd also authenticated by its client certificate (RFC 8705). */
export const withArgocdCertificate = (policy: string): string =>
  policy.replace('  - id: argocd\n', `  - id: argocd\n    tls_client_auth_san_uri: ${ARGOCD_URI}\n`);
