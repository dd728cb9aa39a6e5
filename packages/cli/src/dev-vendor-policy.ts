import type { VendorShape } from '@aoa/testkit';

// The workloads `aoa dev`'s vendor-shaped IdPs describe by default, and the policy that trusts them: the
// same clients, roles and rules (and `when` conditions) as docs/examples/*/policy.yaml, so each worked
// example runs unchanged against `aoa dev` with a token from `aoa dev token --profile <profile>`.

/** The profiles `aoa dev token --profile` mints for. */
export const DEV_TOKEN_PROFILES = [
  'github-actions',
  'gitlab',
  'kubernetes',
  'terraform-cloud',
  'okta',
  'entra',
] as const;
export type DevTokenProfile = (typeof DEV_TOKEN_PROFILES)[number];

/** The one Entra ID tenant `aoa dev` serves and trusts. */
export const DEV_ENTRA_TENANT = '3f1c6a0e-8b2d-4c7a-9e5f-2a6b8d4c1e07';

const GITHUB = {
  ownerId: '1234567',
  repositoryId: '7654321',
  workflowRef: 'octo-org/deploy/.github/workflows/deploy.yml@refs/heads/main',
};
const GITLAB = { namespaceId: '72', projectId: '20' };
const TERRAFORM = { organizationId: 'org-GZUG5kGJPyWGmfMa', workspaceId: 'ws-5YbrEUxjDQ8KFgPs' };
const ARGOCD = { namespace: 'argocd', serviceAccount: 'argocd-application-controller' };
/** The controller's identity: the parent of every child app's standing grant (docs/examples/argo-cd). */
const ARGOCD_PRINCIPAL = `idp:k8s:system:serviceaccount:${ARGOCD.namespace}:${ARGOCD.serviceAccount}`;
/** The child Applications whose pods attest into a standing grant each, by their own service account. */
const ARGOCD_CHILDREN = ['dashboards', 'jobs'] as const;

/** One vendor IdP of `aoa dev` (its profile is its key): policy namespace, shape it mints, default claims. */
export interface DevVendor {
  namespace: string;
  shape: VendorShape;
  /** Merged over the vendor's own defaults on every token, under the caller's `--claim`s. */
  claims: Record<string, unknown>;
}

export const DEV_VENDORS: Record<DevTokenProfile, DevVendor> = {
  'github-actions': {
    namespace: 'github',
    shape: 'github-actions',
    claims: {
      repository: 'octo-org/deploy',
      repository_owner: 'octo-org',
      repository_owner_id: GITHUB.ownerId,
      repository_id: GITHUB.repositoryId,
      workflow: 'deploy',
      workflow_ref: GITHUB.workflowRef,
      job_workflow_ref: GITHUB.workflowRef,
      ref: 'refs/heads/main',
      environment: 'prod',
    },
  },
  // testkit's GitLab token already is my-group/my-project (namespace 72, project 20) on protected main.
  gitlab: { namespace: 'gitlab', shape: 'gitlab', claims: {} },
  kubernetes: {
    namespace: 'k8s',
    shape: 'kubernetes',
    claims: {
      'kubernetes.io': {
        namespace: ARGOCD.namespace,
        node: { name: 'worker-1', uid: '5b2c1f4e-7a0d-4e8b-9c3f-1d6a8e2b4c70' },
        pod: { name: `${ARGOCD.serviceAccount}-0`, uid: '9e4d2a1b-3c5f-4a7e-8b0d-6f1c2e3a4b58' },
        serviceaccount: { name: ARGOCD.serviceAccount, uid: 'c7a3e5d1-2b4f-4c6a-8e0d-9f1b3a5c7e29' },
      },
    },
  },
  'terraform-cloud': {
    namespace: 'tfc',
    shape: 'terraform-cloud',
    claims: {
      terraform_organization_id: TERRAFORM.organizationId,
      terraform_organization_name: 'acme',
      terraform_project_name: 'infra',
      terraform_workspace_id: TERRAFORM.workspaceId,
      terraform_workspace_name: 'network-prod',
      terraform_run_phase: 'apply',
    },
  },
  okta: {
    namespace: 'okta',
    shape: 'okta',
    claims: { groups: ['Everyone', 'aoa-operators'] },
  },
  entra: { namespace: 'entra', shape: 'entra-v2', claims: { roles: ['Deployer'] } },
};

/** The `when` of each example's federated client, role and rule; the example policies carry the same text. */
const WHEN = {
  github: `claims.repository_owner_id == "${GITHUB.ownerId}" && claims.repository_id == "${GITHUB.repositoryId}"`,
  githubRelease: 'claims.ref == "refs/heads/main" && claims.environment == "prod"',
  gitlab: `claims.namespace_id == "${GITLAB.namespaceId}" && claims.project_id == "${GITLAB.projectId}"`,
  gitlabRelease: 'claims.ref_protected == "true" && claims.environment == "production"',
  argocd: `claims["kubernetes.io"].namespace == "${ARGOCD.namespace}" && claims["kubernetes.io"].serviceaccount.name == "${ARGOCD.serviceAccount}"`,
  terraform: `claims.terraform_organization_id == "${TERRAFORM.organizationId}" && claims.terraform_workspace_id == "${TERRAFORM.workspaceId}"`,
  terraformApply: 'claims.terraform_run_phase == "apply"',
};

/** Where `aoa dev` runs each vendor IdP; entra's issuer is the `{tenantid}` template. */
export type DevVendorIssuers = Record<DevTokenProfile, string>;

/** The YAML lines `aoa dev`'s policy adds for the vendor IdPs, one block per policy section. */
export interface DevVendorPolicy {
  idps: string;
  orchestratorMayPresent: string;
  clients: string;
  roles: string;
  apps: string;
  rules: string;
  grants: string;
}

/**
 * The vendor part of the dev policy: the GitHub Actions, GitLab CI, Argo CD (kubernetes) and Terraform Cloud
 * examples' federated clients, roles, apps and rules, and Okta and Entra ID identities the dev
 * orchestrator client may present.
 *
 * @example
 * const part = devVendorPolicy(issuers, 'https://aoa.dev');
 * part.clients; // '  - id: deploy-workflow\n    federated: ...'
 */
export function devVendorPolicy(issuers: DevVendorIssuers, audience: string): DevVendorPolicy {
  const idps = DEV_TOKEN_PROFILES.map((profile) => {
    const { namespace } = DEV_VENDORS[profile];
    const tenants = profile === 'entra' ? `\n    tenants: ["${DEV_ENTRA_TENANT}"]` : '';
    return `  - namespace: ${namespace}\n    profile: ${profile}\n    issuer: ${issuers[profile]}${tenants}\n    audience: ${audience}`;
  });
  const quoted = (text: string) => `'${text}'`;
  return {
    idps: idps.join('\n'),
    orchestratorMayPresent: `      - { idp: okta, groups: [aoa-operators] }
      - { idp: entra, groups: [Deployer] }`,
    clients: `  - id: deploy-workflow
    federated:
      idp: github
      when: ${quoted(WHEN.github)}
      max_age: 5m
  - id: gitlab-pipeline
    federated:
      idp: gitlab
      when: ${quoted(WHEN.gitlab)}
      max_age: 5m
  - id: argocd-controller
    federated:
      idp: k8s
      when: ${quoted(WHEN.argocd)}
      max_age: 1h
  - id: terraform-run
    federated:
      idp: tfc
      when: ${quoted(WHEN.terraform)}
      max_age: 5m`,
    roles: `  - name: deploy-repo
    members: { idps: [github] }
    when: ${quoted(WHEN.github)}
  - name: gitlab-project
    members: { idps: [gitlab] }
    when: ${quoted(WHEN.gitlab)}
  - name: argocd-controller
    members: { idps: [k8s] }
    when: ${quoted(WHEN.argocd)}
  - name: root-app
    members: { apps: [platform-apps] }
  - name: network-workspace
    members: { idps: [tfc] }
    when: ${quoted(WHEN.terraform)}
  - name: operators
    members: { groups: ["okta:aoa-operators", "entra:Deployer"] }
  - name: argocd-grants
    members: { subjects: ["${ARGOCD_PRINCIPAL}"] }`,
    apps: `  - name: deploy-api
    environments: [prod]
    audiences: ["https://deploy-api.internal"]
  - name: platform-apps
    environments: [prod]
    audiences: ["https://metrics.internal"]
  - name: ipam
    environments: [prod]
    audiences: ["https://ipam.internal"]`,
    rules: `  - name: release-from-main
    role: deploy-repo
    children: [deploy-api]
    environments: [prod]
    scopes: { prod: ["deploy:release"] }
    max_ttl: 10m
    when: ${quoted(WHEN.githubRelease)}
  - name: release-from-protected
    role: gitlab-project
    children: [deploy-api]
    environments: [prod]
    scopes: { prod: ["deploy:release"] }
    max_ttl: 10m
    when: ${quoted(WHEN.gitlabRelease)}
  - name: argocd-root
    role: argocd-controller
    children: [platform-apps]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    max_ttl: 1h
    may_delegate: true
    max_depth: 1
  - name: argocd-children
    role: root-app
    children: [dashboards, jobs]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    max_ttl: 30m
  - name: terraform-apply
    role: network-workspace
    children: [ipam]
    environments: [prod]
    scopes: { prod: ["write:subnets"] }
    max_ttl: 15m
    when: ${quoted(WHEN.terraformApply)}
  - name: operators-dashboards
    role: operators
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    max_ttl: 15m
  - name: argocd-standing
    role: argocd-grants
    children: [${ARGOCD_CHILDREN.join(', ')}]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    max_ttl: 15m`,
    grants: ARGOCD_CHILDREN.map(
      (child) => `  - name: ${child}-sidecar
    sub: ${ARGOCD_PRINCIPAL}
    parent_client: argocd-controller
    app: ${child}
    env: prod
    scopes: [read:metrics]
    token_ttl: 10m
    expires_in: none
    attest: { idp: k8s, namespace: ${child}, service_account: ${child} }`,
    ).join('\n'),
  };
}
