import { type ProfileSummary, profileTables } from './cpuprofile.js';

export const TARGETS = [
  'delegate',
  'empty',
  'bare',
  'peer',
  'delegate-mtls',
  'bare-mtls',
  'peer-tls',
] as const;
export type Target = (typeof TARGETS)[number];

export const TARGET_LABELS: Record<Target, string> = {
  delegate: 'Delegate (issuer), client assertion',
  empty: 'empty call: Health/Check (issuer)',
  bare: 'bare grpc-js verify+sign+publish',
  peer: 'peer: oidc-provider client_credentials (HTTP)',
  'delegate-mtls': 'Delegate (issuer), client certificate (mutual TLS)',
  'bare-mtls': 'bare grpc-js sign+publish, client certificate (mutual TLS)',
  'peer-tls': 'peer: oidc-provider client_credentials (HTTPS)',
};

/** Medians over the repeats of one (target, concurrency). */
export interface TargetSummary {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerCall: number;
  serverCpuPct: number;
  core0Pct: number;
  /** Core time used by processes other than the bench's own (other sessions on the machine). */
  noisePct: number;
  loadgenCpuPct: number;
  runs: number;
}

export interface ConcurrencySummary {
  concurrency: number;
  targets: Record<Target, TargetSummary>;
  ratios: {
    delegateToBare: number;
    delegateToEmpty: number;
    delegateToPeer: number;
    p99DelegateToPeer: number;
    /** Server CPU per call, Delegate over bare: the noise-robust view of Delegate/bare. */
    cpuPerCallDelegateToBare: number;
    /** The same for Delegate with a client certificate, against the bare server with one. */
    mtlsToBare: number;
    mtlsToPeer: number;
    p99MtlsToPeer: number;
    /** Against the peer behind TLS as well, as both would run in production. */
    mtlsToPeerTls: number;
    p99MtlsToPeerTls: number;
    cpuPerCallMtlsToBare: number;
  };
  checks: Array<{ name: string; pass: boolean; detail: string }>;
}

export function summarizeConcurrency(
  concurrency: number,
  targets: Record<Target, TargetSummary>,
): ConcurrencySummary {
  const {
    delegate,
    empty,
    bare,
    peer,
    'delegate-mtls': mtls,
    'bare-mtls': bareMtls,
    'peer-tls': peerTls,
  } = targets;
  const floor = 0.85 * bare.rps;
  const mtlsFloor = 0.85 * bareMtls.rps;
  const peerOrFloor = Math.min(peer.rps, floor);
  return {
    concurrency,
    targets,
    ratios: {
      delegateToBare: delegate.rps / bare.rps,
      delegateToEmpty: delegate.rps / empty.rps,
      delegateToPeer: delegate.rps / peer.rps,
      p99DelegateToPeer: delegate.p99Ms / peer.p99Ms,
      cpuPerCallDelegateToBare: delegate.serverCpuUsPerCall / bare.serverCpuUsPerCall,
      mtlsToBare: mtls.rps / bareMtls.rps,
      mtlsToPeer: mtls.rps / peer.rps,
      p99MtlsToPeer: mtls.p99Ms / peer.p99Ms,
      mtlsToPeerTls: mtls.rps / peerTls.rps,
      p99MtlsToPeerTls: mtls.p99Ms / peerTls.p99Ms,
      cpuPerCallMtlsToBare: mtls.serverCpuUsPerCall / bareMtls.serverCpuUsPerCall,
    },
    checks: [
      {
        name: 'Delegate ≥ 85% of bare verify+sign+publish',
        pass: delegate.rps >= floor,
        detail: `${fmtRps(delegate.rps)} vs ${fmtRps(floor)} (${pct(delegate.rps / bare.rps)} of bare)`,
      },
      {
        name: 'Delegate ≥ min(peer, 0.85×bare)',
        pass: delegate.rps >= peerOrFloor,
        detail: `${fmtRps(delegate.rps)} vs ${fmtRps(peerOrFloor)}`,
      },
      {
        name: 'Delegate p99 < peer p99',
        pass: delegate.p99Ms < peer.p99Ms,
        detail: `${fmtMs(delegate.p99Ms)} vs ${fmtMs(peer.p99Ms)} ms`,
      },
      {
        name: 'Delegate (mTLS) ≥ 1.0× peer',
        pass: mtls.rps >= peer.rps,
        detail: `${fmtRps(mtls.rps)} vs ${fmtRps(peer.rps)} (${(mtls.rps / peer.rps).toFixed(2)}×)`,
      },
      {
        name: 'Delegate (mTLS) ≥ 85% of bare mTLS sign+publish',
        pass: mtls.rps >= mtlsFloor,
        detail: `${fmtRps(mtls.rps)} vs ${fmtRps(mtlsFloor)} (${pct(mtls.rps / bareMtls.rps)} of bare)`,
      },
      {
        name: 'Delegate (mTLS) p99 ≤ peer p99',
        pass: mtls.p99Ms <= peer.p99Ms,
        detail: `${fmtMs(mtls.p99Ms)} vs ${fmtMs(peer.p99Ms)} ms`,
      },
    ],
  };
}

export interface ReportMeta {
  date: string;
  commit: string;
  node: string;
  cpu: string;
  repeats: number;
  warmupMs: number;
  measureMs: number;
  durationS: number;
  nice: string;
  retries: number;
  noisyRuns: number;
  totalRuns: number;
  noiseLimitPct: number;
  invalidRuns: string[];
}

export interface ProfileReport {
  file: string;
  rps: number;
  summary: ProfileSummary;
}

export function renderMarkdown(
  meta: ReportMeta,
  rows: ConcurrencySummary[],
  profile?: ProfileReport,
): string {
  const out: string[] = [];
  out.push('# Delegate benchmark', '');
  out.push(
    `${meta.date} · commit ${meta.commit} · Node ${meta.node} · ${meta.cpu} · ` +
      `medians of ${meta.repeats} runs, each ${meta.warmupMs / 1000} s warm-up + ${meta.measureMs / 1000} s measured · ` +
      `total ${Math.round(meta.durationS)} s`,
    '',
    'Layout: every server under test in its own process on core 1 (`taskset -c 1`); the load generator ' +
      '(one Node process, closed loop) and nats-server share core 0. gRPC targets use one HTTP/2 ' +
      'connection, plaintext except the two mutual-TLS targets (P-256 certificates; the client ' +
      'authenticates once, in the handshake, and sends no assertion); the peer uses one keep-alive ' +
      'HTTP/1.1 connection per worker, plaintext, and again over HTTPS (the same P-256 server ' +
      'certificate; the targets judge aoa against the plaintext peer). The bare servers publish one ' +
      'audit-sized event per call to their own JetStream stream and answer on its acknowledgement, ' +
      'as #15 defines the floor (before 2026-12-07 they published nothing). ' +
      '"srv µs/call" is the server process CPU time per successful call, "cap/s" the rate that cost allows ' +
      'on one full core (1e6 / µs per call: robust to noise, meaningful once the server is saturated), ' +
      '"srv core" the server\'s CPU share, "loadgen" the load generator\'s, "core 0" all of core 0, and ' +
      '"noise" the share of a core used by processes outside the bench (other sessions on this machine).',
    '',
    `Noise: ${meta.noisyRuns} of ${meta.totalRuns} kept runs above ${meta.noiseLimitPct}% noise after ` +
      `${meta.retries} retries (a noisy run is retried up to twice, the quietest kept); nice ${meta.nice}.`,
    '',
  );
  if (meta.invalidRuns.length > 0) {
    out.push('**Invalid runs (errors or exhausted assertion pools):**', '');
    for (const r of meta.invalidRuns) out.push(`- ${r}`);
    out.push('');
  }
  out.push('## Throughput and latency', '');
  out.push(
    '| c | target | req/s | p50 ms | p99 ms | srv µs/call | cap/s | srv core | loadgen | core 0 | noise |',
  );
  out.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    for (const [name, t] of Object.entries(row.targets) as Array<
      [keyof typeof TARGET_LABELS, TargetSummary]
    >) {
      out.push(
        `| ${row.concurrency} | ${TARGET_LABELS[name]} | ${fmtRps(t.rps)} | ${fmtMs(t.p50Ms)} | ${fmtMs(t.p99Ms)} | ` +
          `${Math.round(t.serverCpuUsPerCall)} | ${fmtRps(1e6 / t.serverCpuUsPerCall)} | ${Math.round(t.serverCpuPct)}% | ` +
          `${Math.round(t.loadgenCpuPct)}% | ${Math.round(t.core0Pct)}% | ${Math.round(t.noisePct)}% |`,
      );
    }
  }
  out.push('', '## Ratios', '');
  out.push(
    '| c | Delegate/bare | Delegate/empty | Delegate/peer | p99 Delegate | p99 bare | p99 empty | p99 peer | p99 Delegate/peer | CPU/call Delegate/bare |',
  );
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { concurrency, ratios: r, targets: t } of rows) {
    out.push(
      `| ${concurrency} | ${pct(r.delegateToBare)} | ${pct(r.delegateToEmpty)} | ${r.delegateToPeer.toFixed(2)}× | ` +
        `${fmtMs(t.delegate.p99Ms)} | ${fmtMs(t.bare.p99Ms)} | ${fmtMs(t.empty.p99Ms)} | ${fmtMs(t.peer.p99Ms)} | ` +
        `${r.p99DelegateToPeer.toFixed(2)}× | ${r.cpuPerCallDelegateToBare.toFixed(2)}× |`,
    );
  }
  out.push('', '### With a client certificate (mutual TLS, RFC 8705)', '');
  out.push(
    '| c | Delegate mTLS/bare mTLS | Delegate mTLS/peer | Delegate mTLS/peer HTTPS | p99 Delegate mTLS | p99 bare mTLS | p99 peer | p99 peer HTTPS | p99 Delegate mTLS/peer | p99 Delegate mTLS/peer HTTPS | CPU/call Delegate mTLS/bare mTLS | Delegate mTLS/Delegate assertion |',
  );
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { concurrency, ratios: r, targets: t } of rows) {
    out.push(
      `| ${concurrency} | ${pct(r.mtlsToBare)} | ${r.mtlsToPeer.toFixed(2)}× | ${r.mtlsToPeerTls.toFixed(2)}× | ` +
        `${fmtMs(t['delegate-mtls'].p99Ms)} | ${fmtMs(t['bare-mtls'].p99Ms)} | ${fmtMs(t.peer.p99Ms)} | ` +
        `${fmtMs(t['peer-tls'].p99Ms)} | ${r.p99MtlsToPeer.toFixed(2)}× | ${r.p99MtlsToPeerTls.toFixed(2)}× | ` +
        `${r.cpuPerCallMtlsToBare.toFixed(2)}× | ${(t['delegate-mtls'].rps / t.delegate.rps).toFixed(2)}× |`,
    );
  }
  out.push('', '## Targets', '');
  const names = rows[0]?.checks.map((c) => c.name) ?? [];
  out.push(`| c | ${names.join(' | ')} |`);
  out.push(`| ---: | ${names.map(() => '---').join(' | ')} |`);
  for (const row of rows) {
    out.push(
      `| ${row.concurrency} | ${row.checks.map((c) => `**${c.pass ? 'PASS' : 'FAIL'}** ${c.detail}`).join(' | ')} |`,
    );
  }
  if (profile) {
    const s = profile.summary;
    out.push('', '## Where the issuer spends CPU (Delegate with a client certificate, c=16)', '');
    out.push(
      `\`--cpu-prof\` of a separate mutual-TLS issuer process under one c=16 Delegate run (${fmtRps(profile.rps)} req/s while ` +
        `profiled; profile \`${profile.file}\`, not committed). ${s.windowed ? 'Samples limited to the measured window' : 'Whole profile (window not matched)'}: ` +
        `${Math.round(s.sampledMs)} ms sampled, ${Math.round(s.busyMs)} ms busy, ${Math.round(s.idleMs)} ms idle. ` +
        'Shares are of busy time.',
      '',
    );
    out.push(...profileTables(s));
  }
  out.push('');
  return out.join('\n');
}

export const fmtRps = (rps: number): string => (Number.isFinite(rps) ? Math.round(rps).toString() : 'n/a');
export const fmtMs = (ms: number): string => (Number.isFinite(ms) ? ms.toFixed(2) : 'n/a');
const pct = (ratio: number): string => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : 'n/a');
