import { type ParseArgsConfig, parseArgs } from 'node:util';
import { EXIT } from './caller.js';

/**
 * `parseArgs` (strict) for one command: an unknown flag, a missing flag value or an unexpected
 * positional is printed as `aoa <command>: <problem>` and yields undefined, so the caller exits with
 * the usage code.
 *
 * @example
 * const parsed = parseCommand('grants list', { args, options: { env: { type: 'string' } } });
 * if (!parsed) return EXIT.usage;
 */
export function parseCommand<T extends ParseArgsConfig>(
  command: string,
  config: T,
): ReturnType<typeof parseArgs<T>> | undefined {
  try {
    return parseArgs(config);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    process.stderr.write(`aoa ${command}: ${error.message}\n`);
    return undefined;
  }
}

/** Writes a usage problem as `aoa <command>: <problem>` and returns the usage exit code. */
export function usage(command: string, problem: string): number {
  process.stderr.write(`aoa ${command}: ${problem}\n`);
  return EXIT.usage;
}

/** A whole number of seconds from a flag, or a problem naming the flag. */
export function secondsFlag(flag: string, value: string, min: number): number | { problem: string } {
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    return { problem: `--${flag} must be a whole number of seconds, at least ${min}` };
  }
  return Number(value);
}
