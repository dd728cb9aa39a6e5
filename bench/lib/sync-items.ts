import { makeKey } from '../../test/support/oauth.js';

/**
 * The children of an app-of-apps sync as DelegateBatch items: the test policy's `dashboards` app in
 * `prod`, each bound to a holder key of its own.
 */
export async function syncItems(count: number) {
  const holders = await Promise.all(Array.from({ length: count }, () => makeKey()));
  return holders.map((h) => ({
    child: 'dashboards',
    environment: 'prod',
    scopes: ['read:metrics'],
    holderJkt: h.jkt,
  }));
}
