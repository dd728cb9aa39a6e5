import { NAME_PATTERN } from '@aoa/core';
import { SCOPE_TOKEN } from '@aoa/policy';
import { z } from 'zod';

/**
 * A verifier's usage report on `aoa.usage.<env>.<app>`: the scopes that requests needed, and were
 * granted, from tokens issued to that app (and grant) during one window.
 */
export const UsageReport = z
  .object({
    env: z.string().regex(NAME_PATTERN),
    app: z.string().regex(NAME_PATTERN),
    grant_id: z.string().min(1).max(128).optional(),
    scopes: z.array(z.string().regex(SCOPE_TOKEN).max(128)).min(1).max(256),
    from_ms: z.number().int().nonnegative(),
    to_ms: z.number().int().nonnegative(),
  })
  .refine((r) => r.from_ms <= r.to_ms, { message: 'from_ms after to_ms' });
export type UsageReport = z.infer<typeof UsageReport>;

/** Parses one report (never throws): the report, or why it is refused. */
export function parseUsageReport(text: string, subject: string, prefix: string): UsageReport | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  const parsed = UsageReport.safeParse(body);
  if (!parsed.success)
    return parsed.error.issues.map((i) => `${i.path.join('.') || 'report'}: ${i.message}`).join('; ');
  if (subject !== `${prefix}.usage.${parsed.data.env}.${parsed.data.app}`) {
    return 'the subject names another app or environment than the report';
  }
  return parsed.data;
}

/** What the unused-scope report says of one app and environment, or of one grant. */
export interface ScopeReport {
  env: string;
  app: string;
  /** Empty for an app's report. */
  grantId: string;
  /** Every scope issued (the app's privilege baseline) or granted (the grant's scopes). */
  granted: string[];
  /** Of those, the scopes verifiers reported a request needing. */
  exercised: string[];
  unused: string[];
}

/** `granted` split into exercised and unused, both sorted. */
export function scopeReport(
  key: { env: string; app: string; grantId: string },
  granted: readonly string[],
  used: ReadonlySet<string>,
): ScopeReport {
  const sorted = [...new Set(granted)].sort();
  return {
    ...key,
    granted: sorted,
    exercised: sorted.filter((s) => used.has(s)),
    unused: sorted.filter((s) => !used.has(s)),
  };
}
