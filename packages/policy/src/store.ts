import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { sha256Hex } from '@aoa/core';
import { PolicyError } from './errors.js';
import { loadPolicyFile, parsePolicy } from './load.js';
import type { Policy } from './types.js';

export interface PolicyStoreEvents {
  /**
   * Checks a valid policy against what only the caller knows (e.g. its own limits); each returned
   * problem reads `<path>: <problem>` and refuses the policy as a schema problem would.
   */
  validate?(policy: Policy): string[];
  /** A policy was loaded: the first one at open, then every valid change. Audit it with its hash. */
  onLoaded(policy: Policy): void;
  /** A changed file was refused; the previous policy stays in force. `hash` is empty if unreadable. */
  onRejected(problems: string[], hash: string): void;
  /** A callback above threw during a reload; the store carries on. */
  onError?(error: unknown): void;
}

const DEBOUNCE_MS = 100;

/**
 * Holds the policy in force and reloads it when its file changes. A change takes effect only when the
 * whole new file is valid; otherwise the old policy stays and the rejection is reported.
 *
 * @example
 * const store = await PolicyStore.open('/etc/aoa/policy.yaml', {
 *   onLoaded: (p) => audit('policy.loaded', { hash: p.hash }),
 *   onRejected: (problems, hash) => audit('policy.rejected', { hash, problems }),
 * });
 * store.watch();
 * decide(store.current(), request);
 */
export class PolicyStore {
  readonly path: string;
  private policy: Policy;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  /** The last refused content, so one bad save is reported once however many events it causes. */
  private rejectedHash: string | undefined;

  private constructor(
    path: string,
    policy: Policy,
    private readonly events: PolicyStoreEvents,
  ) {
    this.path = path;
    this.policy = policy;
  }

  /**
   * Loads the file; its first load must succeed.
   *
   * @throws PolicyError when the file is unreadable or invalid
   */
  static async open(path: string, events: PolicyStoreEvents): Promise<PolicyStore> {
    const absolute = resolve(path);
    const policy = await loadPolicyFile(absolute);
    const problems = callerProblems(policy, events);
    if (problems.length > 0) throw new PolicyError(problems);
    const store = new PolicyStore(absolute, policy, events);
    events.onLoaded(policy);
    return store;
  }

  /** The policy in force; read it per decision, never keep it. */
  current(): Policy {
    return this.policy;
  }

  /**
   * Watches the file's directory (editors and config maps replace a file rather than write it) and
   * reloads shortly after the last change.
   */
  watch(): void {
    if (this.watcher || this.closed) return;
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, filename) => {
      // `..data` and friends: Kubernetes swaps a mounted ConfigMap by renaming a symlinked directory.
      if (filename === null || filename.toString() === name || filename.toString().startsWith('..')) {
        this.schedule();
      }
    });
    this.watcher.on('error', (error) => this.report(error));
  }

  /** Re-reads the file now; resolves once this reload has been applied or rejected. */
  reload(): Promise<void> {
    this.running = this.running.then(() => this.reloadOnce()).catch((error: unknown) => this.report(error));
    return this.running;
  }

  /** Stops watching; the current policy stays readable. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), DEBOUNCE_MS);
  }

  private async reloadOnce(): Promise<void> {
    if (this.closed) return;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      // Between an editor's delete and its rename the file may be briefly missing; a later event follows.
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      this.notify(() =>
        this.events.onRejected([`${basename(this.path)}: (file): cannot read (${code})`], ''),
      );
      return;
    }
    const hash = sha256Hex(text);
    if (hash === this.policy.hash || hash === this.rejectedHash || this.closed) return;
    let next: Policy;
    try {
      next = parsePolicy(text, this.path);
      const problems = callerProblems(next, this.events);
      if (problems.length > 0) throw new PolicyError(problems);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      this.rejectedHash = hash;
      this.notify(() => this.events.onRejected(error.problems, hash));
      return;
    }
    this.policy = next;
    this.rejectedHash = undefined;
    this.notify(() => this.events.onLoaded(next));
  }

  private notify(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown): void {
    try {
      this.events.onError?.(error);
    } catch {
      // An error handler that fails has nowhere left to report to.
    }
  }
}

function callerProblems(policy: Policy, events: PolicyStoreEvents): string[] {
  return (events.validate?.(policy) ?? []).map((problem) => `${basename(policy.path)}: ${problem}`);
}
