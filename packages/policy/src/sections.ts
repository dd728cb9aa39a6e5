import { GrantSchema } from './grant-schema.js';
import { AppSchema, ClientSchema, IdpSchema, RoleSchema, RuleSchema } from './schema.js';

/** The sections of a policy file, each checked item by item so every problem is found in one pass. */
export const SECTIONS = {
  idps: IdpSchema,
  clients: ClientSchema,
  roles: RoleSchema,
  apps: AppSchema,
  rules: RuleSchema,
  grants: GrantSchema,
} as const;
export type SectionName = keyof typeof SECTIONS;
export const ROOT_KEYS = ['version', 'limits', ...Object.keys(SECTIONS)];
