#!/usr/bin/env node
// Bundles the aoa CLI (the agent sidecar and the operator commands) into packages/cli/dist/main.js,
// runnable with plain `node` from a production-only install, as scripts/build.mjs does for the
// services: the workspace packages are bundled in, npm dependencies stay external. `aoa dev` imports
// the test IdP (a dev dependency) lazily, so the bundle loads without it; only `aoa dev` needs it.
//
//   node infra/docker/build-cli.mjs
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
const outfile = join(root, 'packages', 'cli', 'dist', 'main.js');

await build({
  entryPoints: [join(root, 'packages', 'cli', 'src', 'main.ts')],
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
process.stdout.write('built packages/cli/dist/main.js\n');
