import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { issuer as pb } from '@aoa/proto';
import { createVerifier, type DpopKey, signDpopProof, VerifyError } from '@aoa/sdk';
import { FetchBrowser } from '@aoa/testkit';
import { credentials } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { type DevFacts, startDev } from '../packages/cli/src/dev.js';
import { eventually } from './support/bus.js';
import { launchChromium } from './support/chromium.js';
import { callDelegate } from './support/system.js';

const run = promisify(execFile);
/** Screenshots of each page: where the run saves them (the README shows copies in docs/console/). */
const SHOTS = process.env.AOA_CONSOLE_SCREENSHOTS ?? join('test-results', 'console');

interface Delegated {
  accessToken: string;
  jti: string;
  holderPrivateJwk: JWK;
}

/** The DPoP key of a token's holder, from the Ed25519 private JWK `aoa delegate --json` printed. */
const holderKey = ({ holderPrivateJwk: jwk }: Delegated): DpopKey => ({
  privateKey: createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }),
  publicJwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x },
  alg: 'EdDSA',
});

describe('web console', () => {
  let dataDir: string;
  let dev: Awaited<ReturnType<typeof startDev>>;
  let facts: DevFacts;
  let alice: { login: string; password: string };
  let bob: { login: string; password: string };
  let carol: { login: string; password: string };

  /** `aoa <args> --dev --json`, the CLI as a person would run it. */
  async function aoa<T>(args: string[]): Promise<T> {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'packages/cli/src/main.ts', ...args, '--dev', '--data-dir', dataDir, '--json'],
      { env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    return JSON.parse(stdout) as T;
  }

  const delegateFromCli = (child: string, env: string, scopes: string[]) =>
    aoa<Delegated>(['delegate', '--child', child, '--env', env, ...scopes.flatMap((s) => ['--scope', s])]);

  /** A standing grant for the orchestrator's identity, with `parentClient` as its parent client. */
  const grantFromCli = async (parentClient: string) =>
    (
      await aoa<{ id: string }>([
        'grants',
        'create',
        ...['--sub', 'idp:dev:orchestrator', '--app', 'dashboards', '--env', 'prod'],
        ...['--scope', 'read:metrics', '--ttl', '300', '--parent-client', parentClient],
      ])
    ).id;

  /** The holder of `parent` sub-delegates to `child`, proving its key (DPoP). */
  async function subDelegate(
    parent: Delegated,
    child: string,
    env: string,
    scopes: string[],
  ): Promise<string> {
    const client = new pb.IssuerClient(facts.issuer.grpc, credentials.createInsecure());
    try {
      const proof = await signDpopProof(
        holderKey(parent),
        'POST',
        `${facts.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`,
        parent.accessToken,
      );
      const response = await callDelegate(
        client,
        {
          subjectToken: parent.accessToken,
          child,
          environment: env,
          scopes,
          ttlSeconds: 300,
          holderJkt: await calculateJwkThumbprint(await exportJWK(generateKeyPairSync('ed25519').publicKey)),
        },
        { dpop: proof },
      );
      return response.jti;
    } finally {
      client.close();
    }
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'aoa-console-'));
    dev = await startDev({ dataDir, logLevel: 'warn' });
    facts = dev.facts;
    const person = (login: string) => {
      const user = facts.console.users.find((u) => u.login === login);
      assert.ok(user, `aoa dev has a ${login}`);
      return { login: user.login, password: user.password };
    };
    alice = person('alice');
    bob = person('bob');
    carol = person('carol');
    await mkdir(SHOTS, { recursive: true });
  });

  after(async () => {
    await dev?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  describe('who may see and do what (server side)', () => {
    it('a person policy gives no console rule signs in and is shown nothing, and can change nothing', async () => {
      const browser = new FetchBrowser();
      const home = await browser.open(`${facts.console.url}/login`, carol);
      assert.equal(home.status, 403);
      assert.match(home.body, /No console rights/);
      for (const path of ['/tree', '/events', '/grants', '/revocations', '/creep']) {
        const page = await browser.open(`${facts.console.url}${path}`);
        assert.equal(page.status, 403, path);
        assert.doesNotMatch(page.body, /<table/, `${path} shows no data`);
      }
      const feed = await browser.request(`${facts.console.url}/events/stream`);
      assert.equal(feed.status, 401);
      const csrf = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1] ?? '';
      const refused = await browser.request(`${facts.console.url}/revoke`, {
        form: new URLSearchParams({ csrf, kind: 'app', value: 'dashboards', environment: 'prod' }),
      });
      assert.equal(refused.status, 403);
    });

    it("an owner sees only the client it owns: its grants and tokens, no chain status, no creep, no one else's revocations", async () => {
      const own = await grantFromCli('orchestrator');
      const other = await grantFromCli('admin');
      const token = await delegateFromCli('dashboards', 'staging', ['read:metrics']);
      const browser = new FetchBrowser();
      const home = await browser.open(`${facts.console.url}/login`, bob);
      assert.equal(home.status, 200);
      assert.match(home.body, /owner of orchestrator/);
      assert.match(home.body, /Shown to administrators/);
      const grants = await browser.open(`${facts.console.url}/grants`);
      assert.match(grants.body, new RegExp(own));
      assert.doesNotMatch(grants.body, new RegExp(other));
      assert.equal((await browser.open(`${facts.console.url}/creep`)).status, 403);
      // The grant links to its tokens in the tree (none yet: no agent has enrolled).
      assert.match(grants.body, new RegExp(`href="/tree\\?grant=${own}"`));
      const byGrant = await browser.open(`${facts.console.url}/tree?grant=${own}`);
      assert.equal(byGrant.status, 200);
      assert.match(byGrant.body, /No token matches/);
      assert.equal((await browser.open(`${facts.console.url}/tree?grant=no!`)).status, 400);
      // The orchestrator's token (the CLI delegates as that client) is his to see.
      const tree = await browser.open(`${facts.console.url}/tree?jti=${token.jti}`);
      assert.equal(tree.status, 200);
      assert.match(tree.body, new RegExp(token.jti));
    });

    it('an administrator sees every page, and no page carries token material', async () => {
      const browser = new FetchBrowser();
      assert.equal((await browser.open(`${facts.console.url}/login`, alice)).status, 200);
      for (const path of ['/', '/tree', '/events', '/grants', '/revocations', '/creep']) {
        const page = await browser.open(`${facts.console.url}${path}`);
        assert.equal(page.status, 200, path);
        assert.doesNotMatch(page.body, /eyJ[A-Za-z0-9_-]{8,}/, `${path} holds no JWT`);
        assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      }
      const session = browser.cookie(facts.console.url, 'aoa_console');
      assert.ok(session, 'the session cookie');
    });

    it('a state-changing request without the session CSRF token, or from another origin, is refused and changes nothing', async () => {
      const target = await delegateFromCli('dashboards', 'staging', ['read:metrics']);
      const browser = new FetchBrowser();
      const home = await browser.open(`${facts.console.url}/login`, alice);
      const csrf = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1];
      assert.ok(csrf);
      const revoke = (form: Record<string, string>, headers: Record<string, string> = {}) =>
        browser.request(`${facts.console.url}/revoke`, { form: new URLSearchParams(form), headers });
      assert.equal((await revoke({ kind: 'jti', value: target.jti })).status, 403, 'no token');
      assert.equal(
        (await revoke({ csrf: `${csrf}x`, kind: 'jti', value: target.jti })).status,
        403,
        'wrong token',
      );
      assert.equal(
        (await revoke({ csrf, kind: 'jti', value: target.jti }, { origin: 'https://evil.example' })).status,
        403,
        'another origin',
      );
      const list = await browser.open(`${facts.console.url}/revocations`);
      assert.ok(!list.body.includes(target.jti), 'nothing was revoked');
      const done = await revoke(
        { csrf, kind: 'jti', value: target.jti, reason: 'test' },
        { origin: new URL(facts.console.url).origin },
      );
      assert.equal(done.status, 200);
      assert.ok((await browser.open(`${facts.console.url}/revocations`)).body.includes(`jti.${target.jti}`));
    });

    it('a live feed ends when its session signs out; bad filters and a fourth feed are refused', {
      timeout: 60_000,
    }, async () => {
      const browser = new FetchBrowser();
      const home = await browser.open(`${facts.console.url}/login`, alice);
      const csrf = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1] ?? '';
      const session = browser.cookie(facts.console.url, 'aoa_console') ?? '';
      const stream = (query = '') =>
        fetch(`${facts.console.url}/events/stream${query}`, {
          headers: { cookie: `aoa_console=${session}` },
        });
      assert.equal((await stream('?app=Not%20A%20Name')).status, 400);
      const feeds = await Promise.all([stream(), stream(), stream()]);
      assert.deepEqual(
        feeds.map((f) => f.status),
        [200, 200, 200],
      );
      assert.equal((await stream()).status, 429, 'three feeds per session at most');
      const [first, ...others] = feeds;
      for (const other of others) await other.body?.cancel();
      const reader = first?.body?.getReader();
      assert.ok(reader);
      const decoder = new TextDecoder();
      let seen = '';
      const read = (until: RegExp) =>
        eventually(`the feed says ${until}`, async () => {
          const { value, done } = await reader.read();
          seen += decoder.decode(value ?? new Uint8Array());
          return until.test(seen) || done ? true : undefined;
        });
      await read(/event: ready/);
      const out = await browser.request(`${facts.console.url}/logout`, {
        form: new URLSearchParams({ csrf }),
      });
      assert.equal(out.status, 303);
      await read(/event: expired/);
      assert.match(seen, /event: expired/, 'the open feed ended with the session');
    });

    it('revoking the signed-in person’s own subject ends their session at the next call', async () => {
      const browser = new FetchBrowser();
      const home = await browser.open(`${facts.console.url}/login`, alice);
      const csrf = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1] ?? '';
      const revoked = await browser.request(`${facts.console.url}/revoke`, {
        form: new URLSearchParams({ csrf, kind: 'subject', value: 'idp:dev:alice', reason: 'test' }),
        headers: { origin: new URL(facts.console.url).origin },
      });
      assert.equal(revoked.status, 200);
      const next = await browser.open(`${facts.console.url}/grants`);
      assert.equal(next.status, 401);
      assert.match(next.body, /operator token was revoked/);
      assert.equal(browser.cookie(facts.console.url, 'aoa_console'), undefined, 'the cookie is cleared');
      const again = await new FetchBrowser().open(`${facts.console.url}/login`, alice);
      assert.equal(again.status, 200, 'signing in again gets a token issued after the revocation');
    });

    it('a forged session cookie, and one that has been signed out, lead to the sign-in page', async () => {
      const forged = new FetchBrowser();
      forged.setCookie(facts.console.url, 'aoa_console', 'not-a-session');
      const page = await forged.open(`${facts.console.url}/revocations`);
      assert.match(page.body, /<h1>Sign in<\/h1>/);

      const browser = new FetchBrowser();
      const home = await browser.open(`${facts.console.url}/login`, alice);
      const session = browser.cookie(facts.console.url, 'aoa_console') ?? '';
      const csrf = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1] ?? '';
      const out = await browser.request(`${facts.console.url}/logout`, {
        form: new URLSearchParams({ csrf }),
      });
      assert.equal(out.status, 303);
      const replay = new FetchBrowser();
      replay.setCookie(facts.console.url, 'aoa_console', session);
      assert.match((await replay.open(`${facts.console.url}/grants`)).body, /<h1>Sign in<\/h1>/);
    });
  });

  describe('in a real browser (headless Chromium)', () => {
    let browser: Browser;
    let page: Page;
    const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

    before(async () => {
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    });

    after(async () => {
      await browser?.close();
    });

    it('signs in, sees a CLI delegation in the live feed and the tree, revokes it from the page, and signs out', async (t) => {
      await page.goto(facts.console.url);
      await shot('sign-in');
      await page.click('a.button');
      await page.fill('input[name=login]', alice.login);
      await page.fill('input[name=password]', alice.password);
      await page.click('button[type=submit]');
      await page.waitForSelector('[data-testid=chain]');
      assert.match((await page.textContent('[data-testid=who]')) ?? '', /alice/);
      await shot('overview');

      await page.goto(`${facts.console.url}/events`);
      await page.waitForSelector('[data-testid=live-status].on');
      const parent = await delegateFromCli('dashboards', 'prod', ['read:metrics', 'write:dashboards']);
      const delegatedAt = Date.now();
      await page.waitForSelector(`#feed tr[data-subject="${parent.jti}"]`, { timeout: 10_000 });
      t.diagnostic(
        `the delegation reached the live feed ${Date.now() - delegatedAt} ms after the CLI returned`,
      );
      const grandchild = await subDelegate(parent, 'jobs', 'prod', ['read:metrics']);
      await page.waitForSelector(`#feed tr[data-subject="${grandchild}"]`, { timeout: 10_000 });
      await shot('live-audit');

      await page.goto(`${facts.console.url}/tree?jti=${parent.jti}`);
      await page.waitForSelector(`[data-testid=tree] a[data-jti="${parent.jti}"]`);
      assert.ok(
        await page.$(`[data-testid=tree] a[data-jti="${grandchild}"]`),
        'the sub-delegation is a child node',
      );
      await shot('tree');

      await page.click('[data-testid=details] button.danger');
      assert.equal(await page.textContent('[data-testid=descendants]'), '1');
      await shot('revoke-confirm');
      await page.click('main form button.danger');
      await page.waitForSelector('[data-testid=revoked]');

      const nc = await connect({ servers: facts.natsUrl });
      const verifier = createVerifier({
        issuer: facts.issuer.issuer,
        audience: 'https://metrics.internal',
        nats: nc,
      });
      try {
        await verifier.whenReady();
        const key = holderKey(parent);
        const url = 'https://metrics.internal/api';
        await eventually('a fresh verifier refuses the revoked token', async () => {
          const refusal = await verifier
            .verify({
              authorization: `DPoP ${parent.accessToken}`,
              dpop: await signDpopProof(key, 'GET', url, parent.accessToken),
              method: 'GET',
              url,
            })
            .then(
              () => undefined,
              (error: unknown) => error,
            );
          return refusal instanceof VerifyError && /revoked/.test(refusal.reason) ? true : undefined;
        });
      } finally {
        verifier.close();
        await nc.close();
      }

      await page.goto(`${facts.console.url}/tree?jti=${parent.jti}`);
      assert.ok(
        await page.$(`[data-testid=tree] a.revoked-self[data-jti="${parent.jti}"]`),
        'revoked node marked',
      );
      assert.ok(
        await page.$(`[data-testid=tree] a.revoked-ancestor[data-jti="${grandchild}"]`),
        'its descendant too',
      );
      await shot('tree-revoked');
      for (const [path, name] of [
        ['/revocations', 'revocations'],
        ['/grants', 'grants'],
      ] as const) {
        await page.goto(`${facts.console.url}${path}`);
        await shot(name);
      }
      // dashboards in staging held read:metrics (the CSRF test); write:config too is privilege creep.
      await delegateFromCli('dashboards', 'staging', ['read:metrics', 'write:config']);
      await eventually('the creep alert on the page', async () => {
        await page.goto(`${facts.console.url}/creep`);
        const row = await page.$('[data-testid=creep-alert]');
        const text = (await row?.textContent()) ?? '';
        return text.includes('+write:config') ? true : undefined;
      });
      await shot('privilege-creep');

      await page.click('form.signout button');
      await page.waitForSelector('a.button');
      await page.goto(`${facts.console.url}/tree`);
      assert.match((await page.textContent('h1')) ?? '', /Sign in/);
    });
  });
});
