import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AppError, type Clock } from '@aoa/core';
import type { IdpConfig, TokenReviewConfig } from '@aoa/policy';

/** Answers kept at most, so a flood of distinct tokens cannot grow the cache without bound. */
const MAX_CACHED = 10_000;
const MAX_RESPONSE_BYTES = 64 * 1024;
const REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';

/** What the API server said of one token: accepted as `username`, or not, with its reason. */
type Answer = { authenticated: true; username: string } | { authenticated: false; error: string };

/**
 * Asks a cluster's API server whether it still accepts a service-account token (`TokenReview`,
 * authentication.k8s.io/v1), the way Vault's Kubernetes auth and SPIRE's k8s_psat do: a token verified
 * offline stays valid until `exp` (up to an hour) after its pod is deleted; the cluster knows at once.
 * Answers are kept per token for the IdP's `cache` (never past `exp`); a failure to ask is never kept
 * and refuses the token (fail closed).
 *
 * @example
 * const reviews = new TokenReviews();
 * await reviews.assertAccepted(token, idp, payload, clock); // throws AppError unless the cluster accepts it
 */
export class TokenReviews {
  private readonly answers = new Map<string, { untilMs: number; answer: Answer }>();

  constructor(private readonly timeoutMs = 3000) {}

  async assertAccepted(
    token: string,
    idp: IdpConfig & { tokenReview: TokenReviewConfig },
    claims: { sub?: unknown; exp?: unknown },
    clock: Clock,
  ): Promise<void> {
    const key = `${idp.namespace}\n${createHash('sha256').update(token).digest('base64url')}`;
    const now = clock.nowMs();
    let answer = this.answers.get(key);
    if (answer === undefined || answer.untilMs <= now) {
      this.answers.delete(key);
      answer = {
        answer: await this.review(token, idp),
        untilMs: Math.min(now + idp.tokenReview.cacheSeconds * 1000, Number(claims.exp) * 1000),
      };
      this.remember(key, answer, now);
    }
    const said = answer.answer;
    if (!said.authenticated || said.username !== claims.sub) {
      const why = said.authenticated
        ? `it names ${said.username}, not the token's sub`
        : `the cluster no longer accepts it (${said.error})`;
      throw new AppError('unauthenticated', `subject token: TokenReview of ${idp.namespace}: ${why}`, {
        reason: 'TOKEN_REVIEW_REJECTED',
      });
    }
  }

  private remember(key: string, entry: { untilMs: number; answer: Answer }, now: number): void {
    if (this.answers.size >= MAX_CACHED) {
      for (const [k, v] of this.answers) if (v.untilMs <= now) this.answers.delete(k);
      // Still full: drop the oldest (a Map iterates in insertion order).
      const oldest = this.answers.keys().next();
      if (this.answers.size >= MAX_CACHED && !oldest.done) this.answers.delete(oldest.value);
    }
    this.answers.set(key, entry);
  }

  private async review(token: string, idp: IdpConfig & { tokenReview: TokenReviewConfig }): Promise<Answer> {
    const { server, caFile, tokenFile } = idp.tokenReview;
    const unavailable = (why: string) =>
      new AppError('unavailable', `identity provider ${idp.namespace}: TokenReview at ${server} ${why}`);
    const read = (path: string) =>
      readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw unavailable(`cannot be asked: ${error.code ?? 'unreadable'} reading ${path}`);
      });
    const bearer = (await read(tokenFile)).trim();
    const ca = caFile === undefined ? undefined : await read(caFile);
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [idp.audience] },
    });
    const { status, text } = await post(`${server}${REVIEW_PATH}`, body, bearer, ca, this.timeoutMs).catch(
      (error: Error) => {
        throw unavailable(`is unreachable (${error.message})`);
      },
    );
    // The API server answers 201 Created with the review; 401/403 mean aoa's own identity is refused.
    if (status === 401 || status === 403) {
      throw unavailable(
        `refused aoa's own service account (${status}): bind it to the system:auth-delegator ClusterRole`,
      );
    }
    if (status !== 200 && status !== 201) throw unavailable(`answered ${status}`);
    const review = parseJson(text) as
      | {
          status?: {
            authenticated?: unknown;
            error?: unknown;
            user?: { username?: unknown };
            audiences?: unknown;
          };
        }
      | undefined;
    const result = review?.status;
    if (result === undefined || typeof result !== 'object') throw unavailable('answered no review status');
    if (result.authenticated !== true) {
      return {
        authenticated: false,
        error: typeof result.error === 'string' ? result.error : 'not authenticated',
      };
    }
    const username = result.user?.username;
    if (typeof username !== 'string') throw unavailable('accepted a token without naming its user');
    if (Array.isArray(result.audiences) && !result.audiences.includes(idp.audience)) {
      return { authenticated: false, error: `not for audience ${idp.audience}` };
    }
    return { authenticated: true, username };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function post(
  url: string,
  body: string,
  bearer: string,
  ca: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        timeout: timeoutMs,
        ...(ca === undefined ? {} : { ca }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('response too large'));
          else chunks.push(chunk);
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
