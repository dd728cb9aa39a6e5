#!/usr/bin/env node
// Runs the repository's benchmarks (bench/*.bench.ts) with `npx tsx`, one at a time.
//
//   node scripts/run-bench.mjs                   every bench/*.bench.ts
//   node scripts/run-bench.mjs delegate          only files whose name contains "delegate"
//   node scripts/run-bench.mjs -- --quick        options after "--" go to every benchmark
//
// Fails when no benchmark matches, and when any benchmark fails. Benchmarks pin their own processes
// to cores, so they must not run concurrently.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const benchDir = join(root, 'bench');

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const own = split >= 0 ? argv.slice(0, split) : argv.filter((a) => !a.startsWith('-'));
const forwarded = split >= 0 ? argv.slice(split + 1) : argv.filter((a) => a.startsWith('-'));
const filters = own.map((f) => f.replace(/^bench\//, '').replace(/\.bench\.ts$/, ''));

const all = existsSync(benchDir)
  ? readdirSync(benchDir, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.bench.ts'))
      .map((e) => e.name)
      .sort()
  : [];
const files = all.filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)));
if (files.length === 0) {
  const which = filters.length > 0 ? ` matching ${filters.join(' or ')}` : '';
  console.error(`run-bench: no bench/*.bench.ts files found${which}; refusing to pass`);
  process.exit(1);
}

let current;
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => current?.kill(signal));

const failed = [];
for (const name of files) {
  console.error(`run-bench: ${name}${forwarded.length > 0 ? ` ${forwarded.join(' ')}` : ''}`);
  const code = await new Promise((resolve) => {
    current = spawn('npx', ['tsx', join('bench', name), ...forwarded], { cwd: root, stdio: 'inherit' });
    current.on('error', (error) => {
      console.error(`run-bench: cannot start ${name}: ${error.message}`);
      resolve(1);
    });
    current.on('exit', (exitCode, signal) => resolve(signal !== null ? 1 : (exitCode ?? 1)));
  });
  if (code !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`run-bench: failed: ${failed.join(', ')}`);
  process.exit(1);
}
