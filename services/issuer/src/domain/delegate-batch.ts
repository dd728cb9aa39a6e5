import { isWorkloadAssertion } from '@aoa/auth';
import { AppError, type AuditEnvelope, AuditUnavailable, toAppError } from '@aoa/core';
import { decideAndSign } from './decide-and-sign.js';
import {
  afterClaim,
  authorize,
  type CallerProof,
  type DelegateResult,
  deniedEvent,
  type Facts,
  type IssuerContext,
  issuedEvent,
} from './delegate.js';
import { type RawDelegateRequest, validateDelegateRequest } from './request.js';

/** The most children one DelegateBatch call may ask for. */
export const MAX_BATCH_ITEMS = 256;

/** A DelegateBatch request as it arrives: one subject token, and per child what differs. */
export interface RawDelegateBatch {
  subjectToken: string;
  subjectTokenType: string;
  items: Array<Omit<RawDelegateRequest, 'subjectToken' | 'subjectTokenType'>>;
}

/** A child's credential as DelegateBatch answers it: a Delegate's result, less the claims it signed. */
export type BatchIssued = Omit<DelegateResult, 'claims'>;

/** Each child's outcome, in the items' order: its credential, or the refusal a Delegate would give. */
export type BatchOutcome = { issued: BatchIssued } | { refused: AppError };

/**
 * An app-of-apps sync in one call: the caller is proved and the subject token verified once, then each
 * child is validated, decided and signed exactly as a Delegate would be (its own jti, rule and audit
 * event). Every event, issued and denied, is published together (one `aoa.audit.batch` message, or a
 * few for the largest batches) and acknowledged before any credential is returned: one unacknowledged
 * message and the whole call is UNAVAILABLE (fail closed).
 * A refusal of the caller or the subject token refuses the call, audited once.
 */
export async function delegateBatch(
  ctx: IssuerContext,
  raw: RawDelegateBatch,
  proof: CallerProof,
): Promise<BatchOutcome[]> {
  const down = ctx.busProblem();
  if (down) throw new AuditUnavailable(`${down}: no credential is issued while its audit cannot be stored`);
  if (raw.items.length === 0 || raw.items.length > MAX_BATCH_ITEMS) {
    throw new AppError(
      'invalid_argument',
      `items: 1 to ${MAX_BATCH_ITEMS} children, got ${raw.items.length}`,
    );
  }
  const policy = ctx.policy();
  const facts: Facts = {};
  const requestOf = (item: RawDelegateBatch['items'][number]): RawDelegateRequest => ({
    ...item,
    subjectToken: raw.subjectToken,
    subjectTokenType: raw.subjectTokenType,
  });
  // Each child's audit event is built as it is decided, and only what the answer needs is kept while
  // the events wait for their acknowledgement: the claims of 50 credentials per call would otherwise
  // outlive the young generation under load.
  type Decided = { outcome: BatchOutcome; event: AuditEnvelope };
  let decided: Decided[];
  try {
    if (proof.clientAssertion && proof.dpop && isWorkloadAssertion(policy, proof.clientAssertion)) {
      throw new AppError(
        'invalid_argument',
        "a federated client's credential is bound to its own DPoP key: use Delegate, one child per call",
      );
    }
    const { subject, origin, singleUse } = await authorize(ctx, raw, proof, facts, policy);
    decided = await afterClaim(singleUse, facts, () =>
      raw.items.map((item): Decided => {
        const request = requestOf(item);
        const own: Facts = { ...facts };
        try {
          const input = validateDelegateRequest(request);
          const result = decideAndSign(ctx, input, subject, origin, own, policy);
          const { claims: _signed, ...issued } = result;
          return {
            outcome: { issued },
            event: ctx.audit.envelope('delegation.issued', issued.jti, issuedEvent(input, result)),
          };
        } catch (error) {
          const refused = toAppError(error);
          return {
            outcome: { refused },
            event: ctx.audit.envelope(
              'delegation.denied',
              own.sub ?? 'unknown',
              deniedEvent(request, refused, own),
            ),
          };
        }
      }),
    );
  } catch (error) {
    const refusal = toAppError(error);
    if (!(refusal instanceof AuditUnavailable)) {
      await ctx.audit.publish(
        'delegation.denied',
        facts.sub ?? 'unknown',
        deniedEvent(requestOf(raw.items[0] as RawDelegateBatch['items'][number]), refusal, facts),
      );
    }
    throw error;
  }
  const stored = ctx.audit.publishAll(decided.map((d) => d.event));
  const outcomes = decided.map((d) => d.outcome);
  await stored;
  return outcomes;
}
