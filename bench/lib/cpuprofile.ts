import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The parts of a V8 `.cpuprofile` (as `--cpu-prof` writes it) that a self-time summary needs. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTimeRow {
  function: string;
  location: string;
  selfMs: number;
  /** Share of the non-idle time in the window. */
  pct: number;
}

export interface ProfileSummary {
  /** Whether samples were limited to the measurement window (else the whole profile was used). */
  windowed: boolean;
  sampledMs: number;
  idleMs: number;
  busyMs: number;
  top: SelfTimeRow[];
  byGroup: Array<{ group: string; selfMs: number; pct: number }>;
}

const IDLE = '(idle)';

/**
 * Self time per function (name + script + line), from the samples whose timestamps fall inside
 * `window` (V8 profile timestamps are CLOCK_MONOTONIC microseconds, like `process.hrtime`). Each sample
 * is charged the interval to the next one, as Chrome DevTools does.
 */
export function summarizeProfile(
  profile: CpuProfile,
  window: { startUs: number; endUs: number } | undefined,
  root: string,
  topN = 15,
): ProfileSummary {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const windowed =
    window !== undefined && window.startUs >= profile.startTime && window.endUs <= profile.endTime;
  const self = new Map<string, { fn: string; location: string; group: string; us: number }>();
  const groups = new Map<string, number>();
  let idleUs = 0;
  let sampledUs = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const next = t + (profile.timeDeltas[i + 1] ?? 0);
    const duration = Math.max(0, Math.min(next, profile.endTime) - t);
    if (windowed && (t < window.startUs || t >= window.endUs)) continue;
    const frame = frames.get(profile.samples[i] ?? -1);
    if (!frame) continue;
    sampledUs += duration;
    if (frame.functionName === IDLE) {
      idleUs += duration;
      continue;
    }
    const location = shortLocation(frame.url, frame.lineNumber, root);
    const fn = frame.functionName || '(anonymous)';
    const key = `${fn}\u0000${location}`;
    const group = groupOf(frame.url, fn, root);
    const entry = self.get(key) ?? { fn, location, group, us: 0 };
    entry.us += duration;
    self.set(key, entry);
    groups.set(group, (groups.get(group) ?? 0) + duration);
  }
  const busyUs = sampledUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (us / busyUs) * 100 : 0);
  return {
    windowed,
    sampledMs: sampledUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    top: [...self.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((e) => ({ function: e.fn, location: e.location, selfMs: e.us / 1000, pct: pct(e.us) })),
    byGroup: [...groups.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([group, us]) => ({ group, selfMs: us / 1000, pct: pct(us) })),
  };
}

function shortLocation(url: string, line: number, root: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const inModules = path.lastIndexOf('/node_modules/');
  const short =
    inModules >= 0
      ? path.slice(inModules + '/node_modules/'.length)
      : path.startsWith(root)
        ? relative(root, path)
        : path;
  return `${short}:${line + 1}`;
}

/** npm package, repository workspace, Node internals, or a V8 pseudo-frame. */
function groupOf(url: string, fn: string, root: string): string {
  if (url === '') return fn.startsWith('(') ? fn : 'native (V8 builtins, C++)';
  if (url.startsWith('node:')) return 'node: internals';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const inModules = path.lastIndexOf('/node_modules/');
  if (inModules >= 0) {
    const [scope, name] = path.slice(inModules + '/node_modules/'.length).split('/');
    return scope?.startsWith('@') ? `${scope}/${name}` : (scope ?? path);
  }
  if (path.startsWith(root)) return relative(root, path).split('/').slice(0, 2).join('/');
  return path;
}

/**
 * The main-thread profile a `--cpu-prof --cpu-prof-dir <dir>` process `pid` wrote (files named
 * CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main thread). The other
 * threads' profiles (tsx's loader writes one) are deleted. `before` lists the files already there.
 */
export function mainThreadProfile(
  dir: string,
  pid: number,
  before: Set<string>,
): { file: string; profile: CpuProfile } {
  const written = readdirSync(dir).filter((f) => !before.has(f) && f.includes(`.${pid}.`));
  const file = written.find((f) => f.includes(`.${pid}.0.`));
  if (!file) throw new Error(`no main-thread CPU profile of pid ${pid} in ${dir}`);
  for (const other of written) if (other !== file) rmSync(join(dir, other));
  return { file: join(dir, file), profile: JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile };
}

/** A summary as two markdown tables: the top functions by self time, then self time by package. */
export function profileTables(summary: ProfileSummary, packages = 12): string[] {
  return [
    '| # | function (self time) | location | self ms | share |',
    '| ---: | --- | --- | ---: | ---: |',
    ...summary.top.map(
      (f, i) =>
        `| ${i + 1} | \`${f.function}\` | ${f.location} | ${f.selfMs.toFixed(0)} | ${f.pct.toFixed(1)}% |`,
    ),
    '',
    'Self time by package:',
    '',
    '| package / area | self ms | share |',
    '| --- | ---: | ---: |',
    ...summary.byGroup
      .slice(0, packages)
      .map((g) => `| ${g.group} | ${g.selfMs.toFixed(0)} | ${g.pct.toFixed(1)}% |`),
  ];
}
