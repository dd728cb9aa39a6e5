import type { IdpProfile } from './profiles.js';
import type { Policy } from './types.js';

/** For the CI profiles, the claims that say whose pipeline a token is from. */
const OWNER_CLAIMS: Partial<Record<IdpProfile, { vendor: string; claims: string[]; advice: string }>> = {
  'github-actions': {
    vendor: 'GitHub Actions',
    claims: ['repository_owner_id', 'repository_id', 'repository_owner', 'repository'],
    advice: 'pin claims.repository_owner_id (and repository_id)',
  },
  gitlab: {
    vendor: 'GitLab CI',
    claims: ['namespace_id', 'project_id', 'namespace_path', 'project_path'],
    advice: 'pin claims.namespace_id (and project_id)',
  },
  'terraform-cloud': {
    vendor: 'Terraform Cloud',
    claims: ['terraform_organization_id', 'terraform_organization_name'],
    advice: 'pin claims.terraform_organization_id',
  },
};

/**
 * Warnings about a valid policy that is probably not what its author meant: a role that admits every
 * identity of a CI IdP whose conditions (the role's, and those of every rule of the role) never look
 * at whose repository, project or organisation the token is from, so any pipeline on that service
 * would match.
 *
 * @example
 * for (const warning of policyWarnings(policy)) log.warn({ warning }, 'policy warning');
 */
export function policyWarnings(policy: Policy): string[] {
  const warnings: string[] = [];
  policy.roles.forEach((role, index) => {
    for (const namespace of role.members.idps) {
      const profile = policy.idps.find((idp) => idp.namespace === namespace)?.profile;
      const owner = profile && OWNER_CLAIMS[profile];
      if (!owner) continue;
      const pinned = new RegExp(`\\bclaims(\\.|\\[["'])(${owner.claims.join('|')})\\b`);
      const rules = policy.rules.filter((rule) => rule.role === role.name);
      const pinsRole = role.when !== undefined && pinned.test(role.when.source);
      const pinsEveryRule =
        rules.length > 0 && rules.every((rule) => rule.when && pinned.test(rule.when.source));
      if (!pinsRole && !pinsEveryRule) {
        warnings.push(
          `roles[${index}] (${role.name}): admits ${owner.vendor} tokens of idp ${namespace} from every repository of every owner; ${owner.advice} in its when`,
        );
      }
    }
  });
  return warnings;
}
