import { sha256Hex } from '@aoa/core';

/**
 * The grant id of a policy grant, derived from its name alone, so every rotator replica and every
 * restart names the same record (the compare-and-set create is idempotent across replicas), and an
 * agent registered in policy can be prepared offline (`aoa agent keys --policy-grant`).
 *
 * @example
 * policyGrantId('dashboards-prod'); // 'pg-3f2a...' (35 characters)
 */
export const policyGrantId = (name: string): string =>
  `pg-${sha256Hex(`aoa policy grant\n${name}`).slice(0, 32)}`;
