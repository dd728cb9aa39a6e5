import { generateKeyPairSync } from 'node:crypto';
import {
  errorInfoFrom,
  jwkThumbprint,
  OPERATOR_AUDIENCE,
  type OperatorRights,
  operatorRights,
} from '@aoa/core';
import { auditor, type events, issuer, revoker, rotator } from '@aoa/proto';
import { type DpopKey, signClientAssertion, signDpopProof } from '@aoa/sdk';
import {
  type CallOptions,
  type ChannelCredentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { decodeJwt, exportJWK, type JWK } from 'jose';
import type { ServiceTarget } from '../config.js';

/** How long an operator token is asked for; the console asks again as it runs out. */
const OPERATOR_TTL_SECONDS = 900;
const CALL_TIMEOUT_MS = 10_000;
/** Query pages read to find the newest events of a window: up to 50,000 events. */
const PAGE_SIZE = 1000;
const MAX_PAGES = 50;

/** An aoa operator token held for one signed-in person, bound to a key of this console session. */
export interface OperatorCredential {
  token: string;
  jti: string;
  expiresAtMs: number;
  key: DpopKey;
  /** What the token lets the person do: administer everything, or see and act on the clients it owns. */
  rights: OperatorRights;
}

/** A service refused or failed a call: the gRPC status name and its public message (never token material). */
export class ServiceRefusal extends Error {
  override readonly name = 'ServiceRefusal';
  constructor(
    readonly code: string,
    readonly details: string,
    readonly reason: string,
  ) {
    super(`${code}: ${details}`);
  }

  static of(error: ServiceError): ServiceRefusal {
    return new ServiceRefusal(
      status[error.code] ?? String(error.code),
      error.details,
      errorInfoFrom(error.metadata)?.reason ?? '',
    );
  }
}

export interface ServicesOptions {
  issuerUrl: string;
  issuerGrpc: string;
  auditor: ServiceTarget;
  revoker: ServiceTarget;
  rotator: ServiceTarget;
  channel: ChannelCredentials;
  /** The console's aoa client: its id, private JWK, and the child app and environment it asks for. */
  client: { id: string; jwk: JWK; app: string; env: string };
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  done: (error: ServiceError | null, response: Res) => void,
) => unknown;

/**
 * The aoa services as the console calls them: Delegate as the console client (to obtain a person's
 * operator token), everything else as that person, with the operator token and a fresh DPoP proof
 * whose `htu` is the service's gRPC base URL and the method.
 */
export class AoaServices {
  private readonly issuer: issuer.IssuerClient;
  private readonly auditor: auditor.AuditorClient;
  private readonly revoker: revoker.RevokerClient;
  private readonly rotator: rotator.RotatorClient;

  constructor(private readonly options: ServicesOptions) {
    this.issuer = new issuer.IssuerClient(options.issuerGrpc, options.channel);
    this.auditor = new auditor.AuditorClient(options.auditor.address, options.channel);
    this.revoker = new revoker.RevokerClient(options.revoker.address, options.channel);
    this.rotator = new rotator.RotatorClient(options.rotator.address, options.channel);
  }

  /**
   * Exchanges a person's IdP token for an operator token bound to a fresh key of this session, with
   * `scope` `aoa:admin` (an administrator) or `aoa:owner` (the clients the person owns). The policy
   * decides: a person it grants neither for the console gets a `PERMISSION_DENIED` refusal.
   */
  async operatorToken(idpAccessToken: string, scope: string): Promise<OperatorCredential> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicJwk = await exportJWK(publicKey);
    const key: DpopKey = { privateKey, publicJwk, alg: 'ES256' };
    const metadata = new Metadata();
    const { client } = this.options;
    metadata.set(
      'client-assertion',
      await signClientAssertion(client.id, client.jwk, this.options.issuerUrl),
    );
    const response = await unary<issuer.DelegateRequest, issuer.DelegateResponse>(
      this.issuer.delegate.bind(this.issuer),
      {
        subjectToken: idpAccessToken,
        subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt',
        child: client.app,
        environment: client.env,
        scopes: [scope],
        audience: [OPERATOR_AUDIENCE],
        ttlSeconds: OPERATOR_TTL_SECONDS,
        holderJkt: jwkThumbprint(publicJwk),
      },
      metadata,
    );
    // The token's own lifetime from this clock: a skewed issuer clock must not make it look expired.
    const claims = decodeJwt(response.accessToken);
    const lifetimeMs = (Number(claims.exp) - Number(claims.iat)) * 1000;
    const rights = operatorRights({ aud: [claims.aud ?? []].flat(), scope: String(claims.scope ?? '') });
    if (!rights)
      throw new ServiceRefusal('PERMISSION_DENIED', 'the issued token carries no console rights', '');
    return {
      rights,
      token: response.accessToken,
      jti: response.jti,
      expiresAtMs: Date.now() + (Number.isFinite(lifetimeMs) && lifetimeMs > 0 ? lifetimeMs : 0),
      key,
    };
  }

  async query(
    operator: OperatorCredential,
    request: Partial<auditor.QueryRequest>,
  ): Promise<events.AuditEvent[]> {
    const full = auditor.QueryRequest.fromPartial(request);
    const metadata = await this.proof(operator, this.options.auditor, 'aoa.v1.Auditor/Query');
    return new Promise((resolve, reject) => {
      const rows: events.AuditEvent[] = [];
      const stream = this.auditor.query(full, metadata, { deadline: Date.now() + CALL_TIMEOUT_MS });
      stream.on('data', (event: events.AuditEvent) => rows.push(event));
      stream.on('error', (error: ServiceError) => reject(ServiceRefusal.of(error)));
      stream.on('end', () => resolve(rows));
    });
  }

  /**
   * The newest `keep` events matching `request` (Query answers oldest first, a page at a time): pages
   * on from each page's last event until the window is exhausted or {@link MAX_PAGES} pages are read.
   */
  async latest(
    operator: OperatorCredential,
    request: Omit<Partial<auditor.QueryRequest>, 'limit' | 'pageToken'>,
    keep: number,
  ): Promise<events.AuditEvent[]> {
    let newest: events.AuditEvent[] = [];
    let pageToken = '';
    for (let page = 0; page < MAX_PAGES; page++) {
      const rows = await this.query(operator, { ...request, limit: PAGE_SIZE, pageToken });
      newest = [...newest, ...rows].slice(-keep);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE_SIZE) break;
      pageToken = last.id;
    }
    return newest;
  }

  async lineage(operator: OperatorCredential, jti: string): Promise<auditor.LineageResponse> {
    return unary(
      this.auditor.lineage.bind(this.auditor),
      { jti },
      await this.proof(operator, this.options.auditor, 'aoa.v1.Auditor/Lineage'),
    );
  }

  async verifyChain(operator: OperatorCredential): Promise<auditor.VerifyChainResponse> {
    return unary(
      this.auditor.verifyChain.bind(this.auditor),
      {},
      await this.proof(operator, this.options.auditor, 'aoa.v1.Auditor/VerifyChain'),
    );
  }

  async unusedScopes(operator: OperatorCredential): Promise<auditor.UnusedScopesResponse> {
    return unary(
      this.auditor.unusedScopes.bind(this.auditor),
      { env: '', app: '' },
      await this.proof(operator, this.options.auditor, 'aoa.v1.Auditor/UnusedScopes'),
    );
  }

  async listRevocations(operator: OperatorCredential): Promise<revoker.Revocation[]> {
    const all: revoker.Revocation[] = [];
    let pageToken = '';
    do {
      const page: revoker.ListRevocationsResponse = await unary(
        this.revoker.listRevocations.bind(this.revoker),
        revoker.ListRevocationsRequest.fromPartial({ pageSize: 500, pageToken }),
        await this.proof(operator, this.options.revoker, 'aoa.v1.Revoker/ListRevocations'),
      );
      all.push(...page.revocations);
      pageToken = page.nextPageToken;
    } while (pageToken !== '' && all.length < 10_000);
    return all;
  }

  async revoke(
    operator: OperatorCredential,
    request: revoker.RevokeRequest,
  ): Promise<revoker.RevokeResponse> {
    return unary(
      this.revoker.revoke.bind(this.revoker),
      request,
      await this.proof(operator, this.options.revoker, 'aoa.v1.Revoker/Revoke'),
    );
  }

  async listGrants(operator: OperatorCredential): Promise<rotator.Grant[]> {
    const response: rotator.ListGrantsResponse = await unary(
      this.rotator.listGrants.bind(this.rotator),
      { environment: '', child: '' },
      await this.proof(operator, this.options.rotator, 'aoa.v1.Rotator/ListGrants'),
    );
    return response.grants;
  }

  async rotateNow(operator: OperatorCredential, grantId: string): Promise<void> {
    await unary(
      this.rotator.rotateNow.bind(this.rotator),
      { grantId },
      await this.proof(operator, this.options.rotator, 'aoa.v1.Rotator/RotateNow'),
    );
  }

  close(): void {
    for (const client of [this.issuer, this.auditor, this.revoker, this.rotator]) client.close();
  }

  private async proof(
    operator: OperatorCredential,
    service: ServiceTarget,
    method: string,
  ): Promise<Metadata> {
    const metadata = new Metadata();
    metadata.set('authorization', `DPoP ${operator.token}`);
    metadata.set(
      'dpop',
      await signDpopProof(operator.key, 'POST', `${service.grpcUrl}/${method}`, operator.token),
    );
    return metadata;
  }
}

function unary<Req, Res>(call: Unary<Req, Res>, request: Req, metadata: Metadata): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(request, metadata, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, response) =>
      error ? reject(ServiceRefusal.of(error)) : resolve(response),
    );
  });
}
