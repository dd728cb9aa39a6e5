import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grpcBaseUrl } from './config.js';

describe('grpcBaseUrl', () => {
  it('uses the configured URL without a trailing slash, so every htu is base + /aoa.v1.<Service>/<Method>', () => {
    assert.equal(grpcBaseUrl('https://aoa.example.com/', '0.0.0.0', 7411, true), 'https://aoa.example.com');
    assert.equal(
      grpcBaseUrl('http://aoa-revoker.aoa.svc:7411', '0.0.0.0', 7411, false),
      'http://aoa-revoker.aoa.svc:7411',
    );
  });

  it('else names the listener: the wildcard as loopback, IPv6 bracketed, https with TLS', () => {
    assert.equal(grpcBaseUrl(undefined, '0.0.0.0', 7401, false), 'http://127.0.0.1:7401');
    assert.equal(grpcBaseUrl(undefined, '::1', 7401, true), 'https://[::1]:7401');
  });
});
