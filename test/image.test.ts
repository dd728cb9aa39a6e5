import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// infra/Dockerfile without a Docker engine: its stages are read as text, and its final stage is
// replayed in a temporary directory (production dependencies only, the bundles, the entrypoint), so
// each service starts far enough to refuse an empty environment as it would in the image.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCKERFILE = readFileSync(join(ROOT, 'infra', 'Dockerfile'), 'utf8');
const SERVICES = ['issuer', 'revoker', 'rotator', 'auditor'] as const;

interface Stage {
  from: string;
  name: string | undefined;
  instructions: Array<{ op: string; args: string }>;
}

/** The Dockerfile's stages, continuation lines joined, comments dropped, ARG defaults substituted. */
function stages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const args = new Map<string, string>();
  const result: Stage[] = [];
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    if (op === 'ARG' && result.length === 0) {
      const [key, fallback] = value.split('=');
      if (key && fallback) args.set(key, fallback);
    } else if (op === 'FROM') {
      const [image = '', as, name] = value.split(/\s+/);
      const from = image.replace(/\$\{(\w+)\}/g, (_, key: string) => args.get(key) ?? '');
      result.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      result.at(-1)?.instructions.push({ op: op.toUpperCase(), args: value });
    }
  }
  return result;
}

function run(cwd: string, command: string, args: string[]) {
  // An empty environment but PATH: what a container started without configuration has.
  return spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
    timeout: 30_000,
  });
}

describe('infra/Dockerfile', () => {
  const all = stages(DOCKERFILE);
  const final = all.at(-1) as Stage;
  const finalRuns = final.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

  it('builds in one stage and runs from a slim Node 20 image in another', () => {
    assert.ok(all.length >= 2, 'a multi-stage build');
    const nvmrc = readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim();
    assert.match(
      final.from,
      new RegExp(`^node:${nvmrc}(\\.[\\d.]+)?-(\\w+-)?(slim|alpine)`),
      'final stage image',
    );
    const build = all.find((stage) => stage.name === 'build');
    assert.ok(build, 'a stage named build');
    const buildRuns = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(
      buildRuns.some((r) => /node scripts\/build\.mjs\s*$/.test(r)),
      'the build stage bundles every service and the CLI',
    );
  });

  it('installs production dependencies only in the final stage, as a non-root user with a HEALTHCHECK', () => {
    assert.ok(
      finalRuns.some((r) => r.includes('npm ci --omit=dev')),
      'the final stage runs npm ci --omit=dev',
    );
    assert.ok(
      finalRuns.every((r) => !/npm (ci|install)\b/.test(r) || r.includes('--omit=dev')),
      'and no other install',
    );
    const user = final.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.ok(user, 'the final stage sets USER');
    assert.doesNotMatch(user, /^(root|0)(:|$)/, 'USER is not root');
    assert.ok(
      final.instructions.some((i) => i.op === 'HEALTHCHECK' && i.args.includes('healthcheck.mjs')),
      'HEALTHCHECK',
    );
    const entrypoint = final.instructions.find((i) => i.op === 'ENTRYPOINT')?.args ?? '';
    assert.match(entrypoint, /infra\/docker\/entrypoint\.sh/);
  });

  it('copies only paths that exist in the repository', () => {
    for (const stage of all) {
      for (const { op, args } of stage.instructions) {
        if (op !== 'COPY' || args.includes('--from=')) continue;
        const sources = args
          .split(/\s+/)
          .filter((word) => !word.startsWith('--'))
          .slice(0, -1);
        for (const source of sources) assert.ok(existsSync(join(ROOT, source)), `COPY ${source} exists`);
      }
    }
  });
});

describe('the image, replayed without Docker: production dependencies, bundles, entrypoint', () => {
  let app: string;

  before(() => {
    // The build stage: the bundles, as `npm run build` writes them.
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'pipe' });
    // The final stage: manifests, a production-only install, then the bundles and run-time files.
    app = mkdtempSync(join(tmpdir(), 'aoa-image-'));
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    for (const group of ['packages', 'services']) {
      for (const name of readdirSync(join(ROOT, group))) {
        const manifest = join(ROOT, group, name, 'package.json');
        if (!existsSync(manifest)) continue;
        mkdirSync(join(app, group, name), { recursive: true });
        cpSync(manifest, join(app, group, name, 'package.json'));
      }
    }
    execFileSync(
      'npm',
      [
        'ci',
        '--omit=dev',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--loglevel=error',
      ],
      { cwd: app, stdio: 'pipe' },
    );
    for (const name of SERVICES) {
      cpSync(join(ROOT, 'services', name, 'dist'), join(app, 'services', name, 'dist'), { recursive: true });
    }
    cpSync(join(ROOT, 'packages', 'cli', 'dist'), join(app, 'packages', 'cli', 'dist'), { recursive: true });
    cpSync(join(ROOT, 'proto'), join(app, 'proto'), { recursive: true });
    cpSync(join(ROOT, 'infra', 'sql'), join(app, 'infra', 'sql'), { recursive: true });
    cpSync(join(ROOT, 'infra', 'docker'), join(app, 'infra', 'docker'), { recursive: true });
  });

  after(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('holds no dev dependency', () => {
    for (const dev of ['tsx', 'esbuild', 'typescript', '@biomejs/biome', 'oidc-provider', 'testcontainers']) {
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} is not installed`);
    }
    for (const prod of ['@grpc/grpc-js', '@nats-io/transport-node', 'pg', 'pino', 'zod']) {
      assert.ok(existsSync(join(app, 'node_modules', prod)), `${prod} is installed`);
    }
  });

  for (const name of SERVICES) {
    it(`\`${name}\` starts and refuses an empty environment with KEY: problem lines, exit 2`, () => {
      const result = run(app, 'sh', [join(app, 'infra', 'docker', 'entrypoint.sh'), name]);
      assert.equal(result.status, 2, `exit code; stderr:\n${result.stderr}`);
      assert.match(result.stderr, /^invalid configuration:$/m);
      assert.match(result.stderr, /^ {2}NATS_URL: required$/m);
      assert.match(result.stderr, /^ {2}AOA_POLICY_FILE: required$/m);
      assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
    });
  }

  it('`agent` runs the bundled CLI and names its missing options, exit 2', () => {
    const result = run(app, 'sh', [join(app, 'infra', 'docker', 'entrypoint.sh'), 'agent']);
    assert.equal(result.status, 2, `exit code; stderr:\n${result.stderr}`);
    assert.match(result.stderr, /^aoa agent: missing --out/m);
    assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  });

  it('`aoa --help` runs any CLI command', () => {
    const result = run(app, 'sh', [join(app, 'infra', 'docker', 'entrypoint.sh'), 'aoa', '--help']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /aoa agent/);
  });

  describe('HEALTHCHECK (infra/docker/healthcheck.mjs)', () => {
    let status = 200;
    let server: Server;
    let port: number;

    before(async () => {
      server = createServer((req, res) => {
        res.writeHead(req.url === '/healthz' ? status : 404).end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    after(() => server.close());

    // Asynchronously: the server answering the check lives in this process.
    const check = (env: Record<string, string>) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [join(app, 'infra', 'docker', 'healthcheck.mjs')],
          { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 },
          (_error, _stdout, stderr) => resolve({ status: child.exitCode, stderr }),
        );
      });

    it('passes while /healthz answers 200 on the service listener, a wildcard host asked on loopback', async () => {
      status = 200;
      assert.equal((await check({ AOA_ROTATOR_HTTP_LISTEN: `0.0.0.0:${port}` })).status, 0);
    });

    it('fails on any other answer and when nothing listens', async () => {
      status = 503;
      assert.equal((await check({ AOA_ROTATOR_HTTP_LISTEN: `127.0.0.1:${port}` })).status, 1);
      const closed = await check({ AOA_ISSUER_HTTP_LISTEN: '127.0.0.1:1' });
      assert.equal(closed.status, 1);
      assert.match(closed.stderr, /healthcheck: issuer at 127\.0\.0\.1:1/);
    });
  });
});
