import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';

/** The part of a grpc-js server call that carries what its TLS connection verified. */
export interface CertifiedCall {
  getAuthContext(): { sslPeerCertificate?: { subjectaltname?: string } } | null;
}

/**
 * The URI SANs of the client certificate the call's TLS connection verified, or none: grpc-js shows a
 * handler the peer certificate only when it chains to the listener's client CAs
 * (`TlsFiles.clientCaFile`).
 *
 * @example
 * clientCertificateUris(call); // ['spiffe://example.org/ns/argocd/sa/controller']
 */
export function clientCertificateUris(call: CertifiedCall): string[] {
  const san = call.getAuthContext()?.sslPeerCertificate?.subjectaltname;
  return san ? subjectAltNameUris(san) : [];
}

/**
 * The URI SANs of the client certificate an HTTPS request's connection verified (`TlsFiles.clientCaFile`),
 * or none: a plaintext request, no certificate, or one that does not chain to the client CAs.
 *
 * @example
 * requestCertificateUris(req); // ['spiffe://example.org/ns/argocd/sa/controller']
 */
export function requestCertificateUris(req: IncomingMessage): string[] {
  const socket = req.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return [];
  const san = socket.getPeerCertificate().subjectaltname;
  return san ? subjectAltNameUris(san) : [];
}

const SAN_ENTRY = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;

/**
 * The `URI:` entries of Node's `subjectaltname` string (`DNS:a, URI:spiffe://td/x`), where a name holding
 * a comma, a quote or a control character is JSON-quoted so that it cannot pose as a second entry.
 * Stops at the first entry it cannot read, keeping only what came before it.
 */
export function subjectAltNameUris(subjectAltName: string): string[] {
  const uris: string[] = [];
  SAN_ENTRY.lastIndex = 0;
  while (SAN_ENTRY.lastIndex < subjectAltName.length) {
    const match = SAN_ENTRY.exec(subjectAltName);
    if (!match) break;
    const [, type, value = ''] = match;
    if (type !== 'URI') continue;
    if (!value.startsWith('"')) uris.push(value);
    else {
      try {
        uris.push(JSON.parse(value) as string);
      } catch {
        break;
      }
    }
  }
  return uris;
}
