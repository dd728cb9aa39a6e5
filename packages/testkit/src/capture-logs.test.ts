import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { captureLogs } from './capture-logs.js';

describe('captureLogs', () => {
  it('holds every pino line as soon as the call returns', () => {
    const logs = captureLogs();
    const log = pino({ base: null, timestamp: false }, logs.stream);
    log.info({ jti: 'j-1' }, 'token issued');
    log.warn('second');
    assert.equal(logs.lines().length, 2);
    assert.deepEqual(JSON.parse(logs.lines()[0] ?? ''), { level: 30, jti: 'j-1', msg: 'token issued' });
    assert.ok(logs.text().endsWith('\n'));
  });

  it('lets a test prove a value never reached the logs', () => {
    const logs = captureLogs();
    const log = pino({ redact: ['token'] }, logs.stream);
    log.info({ token: 'eyJ.secret.sig' }, 'issued');
    assert.ok(!logs.text().includes('eyJ.secret.sig'));
  });
});
