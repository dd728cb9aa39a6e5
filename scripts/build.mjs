#!/usr/bin/env node
// Builds each service into one file, services/<name>/dist/main.js, and the CLI (the agent sidecar and
// the operator commands) into packages/cli/dist/main.js, each runnable with plain `node` (no tsx): the
// workspace packages (@aoa/*, TypeScript sources) are bundled in; npm dependencies stay external and
// load from node_modules. Paths resolved at run time (proto/, infra/sql/) are found by walking up from
// the file, so a bundle works from dist/ as the sources do from src/. `aoa dev` imports the test IdP (a
// dev dependency) lazily, so the CLI bundle loads from a production-only install; only `aoa dev` needs it.
//
//   node scripts/build.mjs              every service and the CLI
//   node scripts/build.mjs issuer cli   only the named ones
import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });

/** What can be built, by name: its entry point's directory (src/main.ts in, dist/main.js out). */
const targets = new Map(
  readdirSync(join(root, 'services'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => [entry.name, join('services', entry.name)]),
);
targets.set('cli', join('packages', 'cli'));
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !targets.has(name));
if (unknown.length > 0) {
  console.error(`build: unknown target ${unknown.join(', ')} (known: ${[...targets.keys()].join(', ')})`);
  process.exit(2);
}

for (const name of wanted.length > 0 ? wanted : targets.keys()) {
  const dir = targets.get(name);
  await build({
    entryPoints: [join(root, dir, 'src', 'main.ts')],
    outfile: join(root, dir, 'dist', 'main.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    external,
    logLevel: 'warning',
    // Bundled CommonJS helpers may call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __aoaCreateRequire } from 'node:module'; const require = __aoaCreateRequire(import.meta.url);",
    },
  });
  // Files a service serves as they are (the console's script and stylesheet) go beside the bundle.
  const assets = join(root, dir, 'src', 'static');
  if (existsSync(assets)) cpSync(assets, join(root, dir, 'dist', 'static'), { recursive: true });
  process.stdout.write(`built ${join(dir, 'dist', 'main.js')}\n`);
}
