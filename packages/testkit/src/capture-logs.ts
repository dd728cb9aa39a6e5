import { Writable } from 'node:stream';

/** What {@link captureLogs} returns: a destination for pino and readers over what it received. */
export interface CapturedLogs {
  /** Pass as pino's destination (`pino(options, stream)` or `createLogger({ destination })`). */
  readonly stream: Writable;
  /** Every non-empty line written so far, in order (one JSON object each, for pino). */
  lines(): string[];
  /** Everything written so far, verbatim. */
  text(): string;
}

/**
 * Collects log output in memory so a test can assert on it, above all that no token, key or
 * authorization header ever reaches the logs.
 *
 * Writes land synchronously: a line is readable as soon as the logger call returns.
 *
 * @example
 * const logs = captureLogs();
 * const log = createLogger({ service: 'issuer', destination: logs.stream });
 * log.info({ token }, 'issued');
 * assert.ok(!logs.text().includes(token));
 */
export function captureLogs(): CapturedLogs {
  const chunks: string[] = [];
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: unknown, _encoding, callback) {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      callback();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.length > 0),
  };
}
