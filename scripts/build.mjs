#!/usr/bin/env node
// Builds each service into one file, services/<name>/dist/main.js, runnable with plain `node` (no tsx):
// the workspace packages (@aoa/*, TypeScript sources) are bundled in; npm dependencies stay external
// and load from node_modules. Paths a service resolves at run time (proto/, infra/sql/) are found by
// walking up from the file, so the bundle works from dist/ as the sources do from src/.
//
//   node scripts/build.mjs            every service
//   node scripts/build.mjs issuer     only the named ones
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });

const all = readdirSync(join(root, 'services'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  console.error(`build: unknown service ${unknown.join(', ')} (known: ${all.join(', ')})`);
  process.exit(2);
}

for (const name of wanted.length > 0 ? wanted : all) {
  const outfile = join(root, 'services', name, 'dist', 'main.js');
  await build({
    entryPoints: [join(root, 'services', name, 'src', 'main.ts')],
    outfile,
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
  process.stdout.write(`built ${join('services', name, 'dist', 'main.js')}\n`);
}
