import { join } from 'node:path';
import { parseCommand, usage } from './args.js';
import { EXIT } from './caller.js';
import { readDevFacts } from './delegate.js';
import { DEV_TOKEN_PROFILES } from './dev-vendor-policy.js';

const COMMAND = 'dev token';

/**
 * One `--claim`: `NAME=VALUE` sets a string (GitHub's and Terraform's ids are strings), `NAME:=JSON`
 * any JSON value (`groups:=["aoa-operators"]`, `kubernetes.io:={...}`), as HTTPie writes them.
 *
 * @example
 * parseClaim('ref=refs/heads/main'); // { name: 'ref', value: 'refs/heads/main' }
 * parseClaim('roles:=["Deployer"]'); // { name: 'roles', value: ['Deployer'] }
 */
export function parseClaim(arg: string): { name: string; value: unknown } | { problem: string } {
  const equals = arg.indexOf('=');
  const json = equals > 0 && arg[equals - 1] === ':';
  const name = arg.slice(0, json ? equals - 1 : Math.max(equals, 0));
  if (equals < 0 || name === '' || /[\s=]/.test(name)) {
    return { problem: '--claim must be NAME=VALUE (a string) or NAME:=JSON (any JSON value)' };
  }
  const text = arg.slice(equals + 1);
  if (!json) return { name, value: text };
  try {
    return { name, value: JSON.parse(text) as unknown };
  } catch {
    return { problem: `--claim ${name}:=...: the value after := is not valid JSON` };
  }
}

/**
 * `aoa dev token --profile P [--claim NAME=VALUE ...] [--audience A]`: prints a token of that vendor's
 * shape, minted by the running `aoa dev`'s vendor IdP, with the dev workload's claims under the given
 * ones: the token a GitHub Actions job, an Argo CD pod, a Terraform Cloud run, or an Okta or Entra ID
 * sign-in would present.
 */
export async function devTokenCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, {
    args,
    options: {
      profile: { type: 'string' },
      claim: { type: 'string', multiple: true, default: [] },
      audience: { type: 'string' },
      'data-dir': { type: 'string', default: '.aoa' },
    },
  });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const known = DEV_TOKEN_PROFILES.join(', ');
  if (values.profile === undefined) return usage(COMMAND, `--profile is required (one of ${known})`);
  const profile = values.profile;
  if (!(DEV_TOKEN_PROFILES as readonly string[]).includes(profile)) {
    return usage(COMMAND, `unknown --profile ${JSON.stringify(profile)} (known: ${known})`);
  }
  if (values.audience === '') return usage(COMMAND, '--audience must not be empty');
  const claims: Record<string, unknown> = {};
  for (const arg of values.claim) {
    const claim = parseClaim(arg);
    if ('problem' in claim) return usage(COMMAND, claim.problem);
    claims[claim.name] = claim.value;
  }

  const facts = await readDevFacts(join(values['data-dir'], 'dev.json'));
  const vendor = Object.values(facts.vendorIdps ?? {}).find((entry) => entry.profile === profile);
  if (!vendor) {
    process.stderr.write(`aoa ${COMMAND}: this aoa dev runs no ${profile} IdP: restart aoa dev\n`);
    return EXIT.failure;
  }
  let response: Response;
  try {
    response = await fetch(vendor.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${facts.vendorTokenSecret}` },
      body: JSON.stringify({ claims, ...(values.audience ? { audience: values.audience } : {}) }),
    });
  } catch {
    process.stderr.write(`aoa ${COMMAND}: cannot reach ${vendor.tokenUrl}: is \`aoa dev\` running?\n`);
    return EXIT.unavailable;
  }
  const body = (await response.json().catch(() => ({}))) as {
    token?: string;
    error?: string;
    error_description?: string;
  };
  if (!response.ok || typeof body.token !== 'string') {
    const why = body.error_description ?? body.error ?? `HTTP ${response.status}`;
    process.stderr.write(`aoa ${COMMAND}: the ${profile} IdP of aoa dev refused: ${why}\n`);
    return EXIT.failure;
  }
  process.stdout.write(`${body.token}\n`);
  return EXIT.ok;
}
