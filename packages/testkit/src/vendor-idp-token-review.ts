import type { IncomingMessage, ServerResponse } from 'node:http';
import { importJWK, type JWTPayload, jwtVerify } from 'jose';
import { SIGNING_ALG, type VendorSigningKey } from './vendor-idp-keys.js';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';

/** The part of a cluster's state TokenReview reads, which a test changes. */
export interface ClusterState {
  /** `sub`s of service accounts bound to the `system:auth-delegator` ClusterRole (may create TokenReviews). */
  readonly authDelegators: Set<string>;
  /** uids of pods deleted since their tokens were issued: those tokens no longer authenticate. */
  readonly deletedPods: Set<string>;
  /** The `jti` of every token reviewed, in order (a cache in front of TokenReview shows here). */
  readonly reviewed: string[];
}

type Answer = { status: number; body: unknown };

/**
 * kube-apiserver's `POST /apis/authentication.k8s.io/v1/tokenreviews` over this IdP's own tokens: the
 * caller authenticates with a service-account token (audience: the issuer, as the API server's own) of
 * an auth delegator, else 401/403 with a `Status`; the reviewed token authenticates when its signature,
 * issuer, `exp` and audiences hold and its pod still exists, answered 201 with the `TokenReview`.
 * https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/
 */
export function tokenReviewHandler(
  issuer: string,
  key: VendorSigningKey,
  cluster: ClusterState,
): (request: IncomingMessage, response: ServerResponse) => boolean {
  const verify = async (token: string, audience?: string[]): Promise<JWTPayload> => {
    const publicKey = await importJWK({ ...key.publicJwk, alg: SIGNING_ALG }, SIGNING_ALG);
    const { payload } = await jwtVerify(token, publicKey, {
      issuer,
      algorithms: [SIGNING_ALG],
      ...(audience ? { audience } : {}),
    });
    return payload;
  };
  const review = async (authorization: string | undefined, text: string): Promise<Answer> => {
    const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    const caller = bearer ? await verify(bearer, [issuer]).catch(() => undefined) : undefined;
    if (caller === undefined) return status(401, 'Unauthorized', 'Unauthorized');
    if (!cluster.authDelegators.has(String(caller.sub))) {
      return status(
        403,
        'Forbidden',
        `tokenreviews.authentication.k8s.io is forbidden: User "${String(caller.sub)}" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope`,
      );
    }
    const body = parse(text) as { spec?: { token?: unknown; audiences?: unknown } } | undefined;
    const token = body?.spec?.token;
    if (typeof token !== 'string') return status(400, 'BadRequest', 'spec.token: Required value');
    const wanted = Array.isArray(body?.spec?.audiences) ? (body.spec.audiences as string[]) : [issuer];
    const reviewed = (result: object): Answer => ({
      status: 201,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: body?.spec, status: result },
    });
    let payload: JWTPayload;
    try {
      payload = await verify(token);
      cluster.reviewed.push(String(payload.jti));
    } catch {
      return reviewed({
        authenticated: false,
        error: '[invalid bearer token, square/go-jose: error in cryptographic primitive]',
      });
    }
    const audiences = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter((a) =>
      wanted.includes(String(a)),
    );
    if (audiences.length === 0) {
      return reviewed({
        authenticated: false,
        error: `[invalid bearer token, token audiences ${JSON.stringify(payload.aud)} is invalid for the target audiences ${JSON.stringify(wanted)}]`,
      });
    }
    const scope = payload['kubernetes.io'] as
      | { namespace?: string; pod?: { name?: string; uid?: string }; serviceaccount?: { uid?: string } }
      | undefined;
    if (scope?.pod?.uid !== undefined && cluster.deletedPods.has(scope.pod.uid)) {
      return reviewed({
        authenticated: false,
        error: `[invalid bearer token, pod "${scope.pod.name}" not found, service account token has been invalidated]`,
      });
    }
    return reviewed({
      authenticated: true,
      user: {
        username: payload.sub,
        uid: scope?.serviceaccount?.uid,
        groups: [
          'system:serviceaccounts',
          `system:serviceaccounts:${scope?.namespace}`,
          'system:authenticated',
        ],
        ...(scope?.pod
          ? {
              extra: {
                'authentication.kubernetes.io/pod-name': [scope.pod.name],
                'authentication.kubernetes.io/pod-uid': [scope.pod.uid],
              },
            }
          : {}),
      },
      audiences,
    });
  };
  return (request, response) => {
    if (request.method !== 'POST' || new URL(request.url ?? '/', issuer).pathname !== TOKEN_REVIEW_PATH) {
      return false;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void review(request.headers.authorization, Buffer.concat(chunks).toString('utf8')).then(
        ({ status: code, body }) => {
          response.writeHead(code, { 'content-type': 'application/json' });
          response.end(JSON.stringify(body));
        },
      );
    });
    return true;
  };
}

function status(code: number, reason: string, message: string): Answer {
  return {
    status: code,
    body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code },
  };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
