import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '@aoa/core';

/** Largest form body any OAuth endpoint reads (64 KiB); a larger one is refused with 413. */
export const MAX_FORM_BYTES = 64 * 1024;

/**
 * An OAuth error answer (RFC 6749 section 5.2 shape): `status`, the registered `error` code, and a
 * public description. Thrown by the HTTP adapters and rendered once by {@link sendOAuthError}.
 *
 * @example
 * throw new OAuthError(400, 'invalid_request', 'subject_token: required');
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description?: string,
    readonly headers: Record<string, string> = {},
    /** Extension members of the error body (RFC 6749 section 8.2), e.g. `aoa_reason`. */
    readonly extra: Record<string, string> = {},
  ) {
    super(description ?? error);
  }
}

/** Renders an OAuth error with `no-store`; `server_error` never carries a description. */
export function sendOAuthError(res: ServerResponse, error: OAuthError): void {
  const body: Record<string, string> = { error: error.error };
  if (error.description && error.error !== 'server_error') {
    body.error_description = error.description;
    Object.assign(body, error.extra);
  }
  const headers: Record<string, string> = { pragma: 'no-cache', ...error.headers };
  if (error.status === 401) headers['www-authenticate'] = `Bearer error="${error.error}"`;
  sendJson(res, error.status, body, headers);
}

/** A parsed `application/x-www-form-urlencoded` body in which only `repeatable` names may repeat. */
export interface OAuthForm {
  /** The single value of `name`, or undefined when absent. Empty values count as absent (RFC 6749 3.1). */
  one(name: string): string | undefined;
  /** Every value of a repeatable parameter, in order. */
  all(name: string): string[];
}

/**
 * Reads and parses an OAuth form body: 415 for any other content type, 413 past {@link MAX_FORM_BYTES},
 * `invalid_request` for a parameter sent twice (RFC 6749 section 3.2: "MUST NOT be included more than
 * once") unless it is one of `repeatable`.
 *
 * @example
 * const form = await readOAuthForm(req, ['audience', 'resource']);
 */
export async function readOAuthForm(req: IncomingMessage, repeatable: readonly string[]): Promise<OAuthForm> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    drain(req);
    throw new OAuthError(415, 'invalid_request', 'content type must be application/x-www-form-urlencoded');
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_FORM_BYTES) {
    drain(req);
    throw new OAuthError(413, 'invalid_request', `body larger than ${MAX_FORM_BYTES} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      drain(req);
      throw new OAuthError(413, 'invalid_request', `body larger than ${MAX_FORM_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  const values = new Map<string, string[]>();
  for (const [name, value] of params) {
    const list = values.get(name) ?? [];
    list.push(value);
    values.set(name, list);
  }
  for (const [name, list] of values) {
    if (list.length > 1 && !repeatable.includes(name)) {
      throw new OAuthError(400, 'invalid_request', `${safeName(name)}: sent more than once`);
    }
  }
  return {
    one: (name) => values.get(name)?.[0] || undefined,
    all: (name) => (values.get(name) ?? []).filter(Boolean),
  };
}

/** Discards the rest of a refused body, so a keep-alive connection stays usable. */
function drain(req: IncomingMessage): void {
  req.resume();
}

/** Parameter names echo into descriptions only when they look like names. */
const safeName = (name: string): string => (/^[a-z_]{1,40}$/.test(name) ? name : 'a parameter');
