import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientCertificateUris, subjectAltNameUris } from './client-certificate.js';

describe('the URI SANs of a verified client certificate', () => {
  it("reads every URI entry of Node's subjectaltname, whatever else the certificate names", () => {
    assert.deepEqual(
      subjectAltNameUris(
        'DNS:controller.argocd.svc, URI:spiffe://td/ns/argocd/sa/c, IP Address:10.0.0.1, URI:https://x',
      ),
      ['spiffe://td/ns/argocd/sa/c', 'https://x'],
    );
    assert.deepEqual(subjectAltNameUris('DNS:only.example'), []);
  });

  it('unquotes a name holding a comma, so that it cannot pose as a second entry', () => {
    // What Node prints for a URI SAN "spiffe://td/x, URI:spiffe://evil" (one entry, not two).
    assert.deepEqual(subjectAltNameUris('URI:"spiffe://td/x\\u002c URI:spiffe://evil", DNS:a'), [
      'spiffe://td/x, URI:spiffe://evil',
    ]);
  });

  it('stops at what it cannot read, and sees nothing on a call without a verified certificate', () => {
    assert.deepEqual(subjectAltNameUris('URI:spiffe://td/a, URI:"unterminated, URI:spiffe://td/b'), [
      'spiffe://td/a',
    ]);
    assert.deepEqual(clientCertificateUris({ getAuthContext: () => null }), []);
    assert.deepEqual(clientCertificateUris({ getAuthContext: () => ({}) }), []);
    assert.deepEqual(
      clientCertificateUris({
        getAuthContext: () => ({ sslPeerCertificate: { subjectaltname: 'URI:spiffe://td/a' } }),
      }),
      ['spiffe://td/a'],
    );
  });
});
