import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildServices, type ServiceProcess, startBuilt, waitForLog } from './support/processes.js';
import { startSystem, type TestSystem } from './support/system.js';

const SERVICES = ['issuer', 'revoker', 'rotator', 'auditor'] as const;
/** What each service's /metrics must expose for operations (docs/operations.md, "What to watch"). */
const METRICS: Record<(typeof SERVICES)[number], string[]> = {
  issuer: ['aoa_issuer_delegations_total', 'aoa_issuer_delegate_seconds', 'aoa_issuer_grant_mints_total'],
  revoker: ['aoa_revoker_revocations_total', 'aoa_revoker_audit_outbox_pending'],
  rotator: [
    'aoa_rotator_rotations_total',
    'aoa_rotator_deliveries_total',
    'aoa_rotator_rotation_lag_seconds',
    'aoa_rotator_max_rotation_lag_seconds',
  ],
  auditor: [
    'aoa_auditor_backlog_messages',
    'aoa_auditor_ingest_lag_seconds',
    'aoa_auditor_events_stored_total',
  ],
};

describe('each service as its own process, from its build (node services/<name>/dist/main.js)', () => {
  let sys: TestSystem;
  let auditDir: string;
  const running: ServiceProcess[] = [];

  before(async () => {
    buildServices();
    sys = await startSystem();
    auditDir = await mkdtemp(join(tmpdir(), 'aoa-processes-audit-'));
  });
  after(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await sys?.stop();
    await rm(auditDir, { recursive: true, force: true });
  });

  it('starts each on validated config, serves /readyz, and stops cleanly on SIGTERM', async () => {
    const common = {
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
      LOG_LEVEL: 'info',
    };
    const listen = (prefix: string) => ({
      [`AOA_${prefix}_GRPC_LISTEN`]: '127.0.0.1:0',
      [`AOA_${prefix}_HTTP_LISTEN`]: '127.0.0.1:0',
    });
    for (const name of SERVICES) {
      const env = {
        ...common,
        ...listen(name.toUpperCase()),
        ...(name === 'auditor' ? { AOA_AUDIT_DB: auditDir } : {}),
        // The built issuer is a second replica beside the test system's: it must say the same issuer.
        ...(name === 'issuer' ? { AOA_ISSUER_URL: sys.issuer.issuer } : {}),
      };
      const p = startBuilt(name, env);
      running.push(p);
      const started = await waitForLog(p, `${name} started`);
      const ready = await fetch(`http://127.0.0.1:${started.httpPort}/readyz`);
      assert.equal(ready.status, 200, `${name} /readyz`);
      assert.deepEqual(await ready.json(), { ready: true, problems: [] });
      const metrics = await (await fetch(`http://127.0.0.1:${started.httpPort}/metrics`)).text();
      for (const metric of [...METRICS[name], 'process_resident_memory_bytes']) {
        assert.match(metrics, new RegExp(`^# TYPE ${metric} `, 'm'), `${name} /metrics has ${metric}`);
      }
    }
    for (const p of running) p.child.kill('SIGTERM');
    const codes = await Promise.all(running.map((p) => p.exited));
    assert.deepEqual(codes, [0, 0, 0, 0], 'every service exits 0 after draining');
    for (const p of running) assert.ok(p.lines().some((l) => l.msg === 'stopping' && l.signal === 'SIGTERM'));
  });

  it('refuses to start on bad configuration, naming every variable and never its value', async () => {
    const p = startBuilt('rotator', {
      NATS_URL: sys.nats.url,
      AOA_ISSUER_URL: 'not a url',
      AOA_ROTATOR_LEASE: 'soon',
    });
    assert.equal(await p.exited, 2);
    const output = p.output();
    assert.match(output, /AOA_POLICY_FILE: required/);
    assert.match(output, /AOA_ISSUER_URL: /);
    assert.match(output, /AOA_ROTATOR_LEASE: /);
    assert.doesNotMatch(output, /not a url|soon/);
  });
});
