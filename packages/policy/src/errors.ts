/** Most problems a PolicyError lists in its message; `problems` always holds them all. */
const MESSAGE_PROBLEMS = 20;

/**
 * A policy file that cannot be used. Each problem reads `<file>: <path>: <problem>`, short and free of
 * the file's text, so it can be logged and audited as is.
 *
 * @example
 * try { parsePolicy(text, 'policy.yaml'); } catch (e) {
 *   if (e instanceof PolicyError) for (const p of e.problems) console.error(p);
 * }
 */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly code = 'invalid_policy';

  constructor(readonly problems: string[]) {
    const shown = problems.slice(0, MESSAGE_PROBLEMS);
    const more = problems.length - shown.length;
    super(
      `invalid policy (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${shown.join('\n  ')}` +
        (more > 0 ? `\n  ... and ${more} more` : ''),
    );
  }
}

export type PathSegment = string | number | symbol;

/**
 * Renders a value path as `rules[2].scopes.prod[0]`; keys that are not plain words are quoted
 * (`scopes["a b"]`), the empty path is `(root)`.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      out += /^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(key) ? `${out ? '.' : ''}${key}` : `[${quote(key)}]`;
    }
  }
  return out || '(root)';
}

/** A value quoted for a problem message, cut short so a problem never carries a large chunk of input. */
export function quote(value: unknown, max = 64): string {
  const text = typeof value === 'string' ? value : String(value);
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}...` : text);
}

/** Collects problems for one file, each prefixed with the file's base name. */
export class Problems {
  readonly list: string[] = [];
  constructor(private readonly file: string) {}

  add(path: readonly PathSegment[] | string, problem: string): void {
    const where = typeof path === 'string' ? path : formatPath(path);
    this.list.push(`${this.file}: ${where}: ${problem}`);
  }

  get empty(): boolean {
    return this.list.length === 0;
  }
}

/** The operator-facing text for a policy refused at startup, or undefined for any other error. */
export const explainPolicyError = (error: unknown): string | undefined =>
  error instanceof PolicyError ? `policy refused:\n  ${error.problems.join('\n  ')}` : undefined;
