// Preloaded into a server under test (`node --import <this file>`): keeps the running totals of its
// garbage collection pauses (count and milliseconds, young generation apart) in the JSON file named
// by AOA_BENCH_GC_FILE, rewritten every 200 ms, for bench/compare-issuers.ts to read between windows.
import { renameSync, writeFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';

const file = process.env.AOA_BENCH_GC_FILE;
if (!file) throw new Error('gc-totals: AOA_BENCH_GC_FILE is not set');
const totals = { minorCount: 0, minorMs: 0, otherCount: 0, otherMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      totals.minorCount++;
      totals.minorMs += entry.duration;
    } else {
      totals.otherCount++;
      totals.otherMs += entry.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });
// Written aside and renamed, so a reader never sees half a file.
const write = () => {
  writeFileSync(`${file}.next`, JSON.stringify(totals));
  renameSync(`${file}.next`, file);
};
write();
setInterval(write, 200).unref();
