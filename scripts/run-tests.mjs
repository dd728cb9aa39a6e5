#!/usr/bin/env node
// Runs the repository's node:test files through tsx.
//
//   node scripts/run-tests.mjs                 every *.test.ts under packages/*/src, services/*/src, test/
//   node scripts/run-tests.mjs --unit          only packages/*/src and services/*/src/domain
//   node scripts/run-tests.mjs nats idp        only files whose path contains "nats" or "idp"
//
// On Node 20 the test runner cannot glob .ts files, and without a file list it runs stale dist/*.js
// or, finding nothing, exits 0; so this script lists the files itself and fails when there are none.
// Files run one at a time: each starts its own servers and the CI machine has 2 cores.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.git']);

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const unknown = args.filter((arg) => arg.startsWith('-') && arg !== '--unit');
if (unknown.length > 0) {
  console.error(`run-tests: unknown option ${unknown.join(' ')} (known: --unit, then path filters)`);
  process.exit(2);
}
const filters = args.filter((arg) => !arg.startsWith('-'));

/** Every *.test.ts below dir, as paths relative to the repository root with forward slashes. */
function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) found.push(...testFiles(path));
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      found.push(relative(root, path).split(sep).join('/'));
    }
  }
  return found;
}

/** The given subdirectory of every workspace under group (packages, services). */
function workspaceDirs(group, sub) {
  const base = join(root, group);
  if (!existsSync(base)) return [];
  return readdirSync(base, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !SKIPPED_DIRS.has(entry.name))
    .map((entry) => join(base, entry.name, sub));
}

const dirs = unit
  ? [...workspaceDirs('packages', 'src'), ...workspaceDirs('services', join('src', 'domain'))]
  : [...workspaceDirs('packages', 'src'), ...workspaceDirs('services', 'src'), join(root, 'test')];

const files = [...new Set(dirs.flatMap(testFiles))]
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

if (files.length === 0) {
  const scope = unit ? 'packages/*/src, services/*/src/domain' : 'packages/*/src, services/*/src, test/';
  const filtered = filters.length > 0 ? ` matching ${filters.join(' or ')}` : '';
  console.error(`run-tests: no *.test.ts files found under ${scope}${filtered}; refusing to pass`);
  process.exit(1);
}

console.error(`run-tests: ${files.length} file(s)${unit ? ' (unit)' : ''}`);
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => {
  if (signal !== null) {
    console.error(`run-tests: the test runner was killed by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
