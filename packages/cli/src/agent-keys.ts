import { isName, jwkThumbprint } from '@aoa/core';
import { policyGrantId } from '@aoa/policy';
import { generateAgentKeys } from '@aoa/sdk';
import { prepareKeyDir, publicJwk, readKeyDir, writeKeyDir } from './agent-files.js';
import { parseCommand, usage } from './args.js';
import { EXIT } from './caller.js';

/**
 * `aoa agent keys`: prepares an agent registered in policy (a `grants:` entry's `agents:`), which needs
 * no join token. Generates the agent's two key pairs in `--key-dir` (or keeps those there), records the
 * enrolment the rotator will make from the policy (the grant id derives from the grant's name), and
 * prints the `agents:` entry with the public keys to paste into the policy.
 */
export async function agentKeysCommand(args: string[]): Promise<number> {
  const command = 'agent keys';
  const parsed = parseCommand(command, {
    args,
    options: {
      'key-dir': { type: 'string' },
      'agent-id': { type: 'string' },
      'policy-grant': { type: 'string' },
      app: { type: 'string' },
      env: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const missing = (['key-dir', 'agent-id', 'policy-grant', 'app', 'env'] as const).filter((k) => !values[k]);
  if (missing.length > 0) return usage(command, `give ${missing.map((m) => `--${m}`).join(', ')}`);
  const keyDir = values['key-dir'] as string;
  const agentId = values['agent-id'] as string;
  const grantName = values['policy-grant'] as string;
  const app = values.app as string;
  const env = values.env as string;
  for (const [flag, value] of [
    ['agent-id', agentId],
    ['policy-grant', grantName],
    ['app', app],
    ['env', env],
  ] as const) {
    if (!isName(value)) return usage(command, `--${flag} must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`);
  }
  try {
    await prepareKeyDir(keyDir);
    const held = await readKeyDir(keyDir);
    if (held.enrolment && held.enrolment.agentId !== agentId) {
      return usage(
        command,
        `--key-dir ${keyDir} belongs to agent ${held.enrolment.agentId}: give each agent its own`,
      );
    }
    const keys = held.keys ?? (await generateAgentKeys()).private;
    const dpop = publicJwk(keys.dpop);
    const enrolment = {
      agentId,
      grantId: policyGrantId(grantName),
      app,
      env,
      dpopJkt: jwkThumbprint(dpop),
    };
    await writeKeyDir(keyDir, keys, enrolment);
    const entry = { id: agentId, encryption_jwk: publicJwk(keys.encryption), dpop_jwk: dpop };
    process.stdout.write(
      values.json
        ? `${JSON.stringify({ ...enrolment, policyEntry: entry }, null, 2)}\n`
        : `# add under grants[name=${grantName}].agents in the policy:\n` +
            `      - id: ${agentId}\n        encryption_jwk: ${JSON.stringify(entry.encryption_jwk)}\n` +
            `        dpop_jwk: ${JSON.stringify(entry.dpop_jwk)}\n`,
    );
    return EXIT.ok;
  } catch (error) {
    process.stderr.write(`aoa ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
}
