import { randomUUID } from 'node:crypto';
import {
  type Claims,
  randomAlphanumeric,
  randomBase58,
  randomBase64url,
  randomDecimal,
  randomHex,
  type ShapeProfile,
  stringClaim,
} from './vendor-idp-profile.js';

// Default claim values follow the formats of each vendor's public documentation (see the links); the
// values themselves are generated here. Ids that name one principal (a user, a repository, a service
// account) are fixed per IdP, so every token of one IdP describes the same workload; jti is per token.

/**
 * Okta, custom authorization server: an access token for a signed-in user.
 * https://developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/#access-token
 */
export function oktaProfile(): ShapeProfile & { readonly authorizationServerId: string } {
  const cid = `0oa${randomAlphanumeric(17)}`;
  const uid = `00u${randomAlphanumeric(17)}`;
  return {
    authorizationServerId: `aus${randomAlphanumeric(17)}`,
    kidStyle: 'jwk-thumbprint',
    ttlSeconds: 3600,
    routes: { token: '/v1/token', jwks: '/v1/keys' },
    // Okta's access-token header holds only alg and kid.
    header: () => ({ typ: undefined }),
    claims: ({ issuer, audience, iat, exp }) => ({
      ver: 1,
      jti: `AT.${randomBase64url(32)}`,
      iss: issuer,
      aud: audience,
      iat,
      exp,
      cid,
      uid,
      scp: ['openid', 'profile', 'email', 'offline_access'],
      auth_time: iat - 30,
      sub: 'ada.lovelace@example.com',
      groups: ['Everyone', 'aoa-operators'],
    }),
  };
}

/**
 * A GitHub Actions job's OIDC token: numeric ids are strings, `sub` follows the environment, the pull
 * request or the ref, in that order, with `:` in values written `%3A`.
 * https://docs.github.com/en/actions/concepts/security/openid-connect
 * https://docs.github.com/en/actions/reference/security/oidc
 */
export function githubActionsProfile(): ShapeProfile {
  const sha = randomHex(20);
  const runId = randomDecimal(11);
  const workflowRef = 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main';
  const profile: ShapeProfile = {
    kidStyle: 'uuid',
    ttlSeconds: 300,
    routes: { token: '/token', jwks: '/.well-known/jwks' },
    header: (key) => ({ typ: 'JWT', x5t: key.x5t }),
    claims: ({ issuer, audience, iat, exp }) => {
      const claims: Claims = {
        jti: randomUUID(),
        sub: '',
        environment: 'prod',
        aud: audience,
        ref: 'refs/heads/main',
        sha,
        repository: 'octo-org/octo-repo',
        repository_owner: 'octo-org',
        actor_id: '12',
        repository_visibility: 'private',
        repository_id: '74',
        repository_owner_id: '65',
        run_id: runId,
        run_number: '10',
        run_attempt: '1',
        runner_environment: 'github-hosted',
        actor: 'octocat',
        workflow: 'deploy',
        head_ref: '',
        base_ref: '',
        event_name: 'push',
        ref_protected: 'true',
        ref_type: 'branch',
        workflow_ref: workflowRef,
        workflow_sha: sha,
        job_workflow_ref: workflowRef,
        job_workflow_sha: sha,
        iss: issuer,
        nbf: iat - 600,
        exp,
        iat,
      };
      return { ...claims, ...profile.derive?.(claims) };
    },
    derive: (claims) => ({ sub: githubSubject(claims) }),
  };
  return profile;
}

function githubSubject(claims: Readonly<Claims>): string {
  const encodeColons = (value: string) => value.replaceAll(':', '%3A');
  const repository = `repo:${encodeColons(stringClaim(claims, 'repository'))}`;
  const environment = stringClaim(claims, 'environment');
  if (environment !== '') return `${repository}:environment:${encodeColons(environment)}`;
  if (stringClaim(claims, 'event_name') === 'pull_request') return `${repository}:pull_request`;
  return `${repository}:ref:${encodeColons(stringClaim(claims, 'ref'))}`;
}

/**
 * A GitLab CI/CD ID token (`id_tokens:` in .gitlab-ci.yml): ids are strings except `runner_id`; `nbf` is
 * five seconds before `iat`; without a job timeout the token lives five minutes.
 * https://docs.gitlab.com/ci/secrets/id_token_authentication/
 */
export function gitlabProfile(): ShapeProfile {
  const sha = randomHex(20);
  const profile: ShapeProfile = {
    kidStyle: 'jwk-thumbprint',
    ttlSeconds: 300,
    routes: { token: '/oauth/token', jwks: '/oauth/discovery/keys' },
    header: () => ({ typ: 'JWT' }),
    claims: ({ issuer, audience, iat, exp }) => {
      const claims: Claims = {
        namespace_id: '72',
        namespace_path: 'my-group',
        project_id: '20',
        project_path: 'my-group/my-project',
        user_id: '1',
        user_login: 'sample-user',
        user_email: 'sample-user@example.com',
        user_access_level: 'maintainer',
        pipeline_id: '574',
        pipeline_source: 'push',
        job_id: '302',
        ref: 'main',
        ref_type: 'branch',
        ref_path: 'refs/heads/main',
        ref_protected: 'true',
        groups_direct: ['my-group'],
        environment: 'production',
        environment_protected: 'true',
        deployment_tier: 'production',
        environment_action: 'start',
        runner_id: 1,
        runner_environment: 'gitlab-hosted',
        sha,
        project_visibility: 'private',
        ci_config_ref_uri: `${new URL(issuer).host}/my-group/my-project//.gitlab-ci.yml@refs/heads/main`,
        ci_config_sha: sha,
        jti: randomUUID(),
        iss: issuer,
        iat,
        nbf: iat - 5,
        exp,
        sub: '',
        aud: audience,
      };
      return { ...claims, ...profile.derive?.(claims) };
    },
    derive: (claims) => ({
      sub: `project_path:${stringClaim(claims, 'project_path')}:ref_type:${stringClaim(claims, 'ref_type')}:ref:${stringClaim(claims, 'ref')}`,
    }),
  };
  return profile;
}

/** The service account and pod a kubernetes IdP's tokens describe. */
export interface KubernetesWorkload {
  readonly namespace: string;
  readonly serviceAccount: { readonly name: string; readonly uid: string };
  readonly pod: { readonly name: string; readonly uid: string };
  readonly node: { readonly name: string; readonly uid: string };
  /** The `kubernetes.io/service-account-token` Secret a legacy token of the service account comes from. */
  readonly legacySecretName: string;
}

/**
 * A projected (bound) service-account token as kube-apiserver issues it: `aud` always an array, no
 * `typ` header, the pod and node it is bound to under `kubernetes.io`.
 * https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-tokens
 * https://github.com/kubernetes/enhancements/tree/master/keps/sig-auth/1205-bound-service-account-tokens
 */
export function kubernetesProfile(): ShapeProfile & { readonly workload: KubernetesWorkload } {
  const workload: KubernetesWorkload = {
    namespace: 'ci',
    serviceAccount: { name: 'deployer', uid: randomUUID() },
    pod: { name: `deployer-${randomHex(5)}-${randomAlphanumeric(5).toLowerCase()}`, uid: randomUUID() },
    node: { name: 'worker-1', uid: randomUUID() },
    legacySecretName: `deployer-token-${randomAlphanumeric(5).toLowerCase()}`,
  };
  const profile = {
    workload,
    kidStyle: 'spki-sha256',
    ttlSeconds: 3600,
    routes: { token: '/token', jwks: '/openid/v1/jwks' },
    header: () => ({ typ: undefined }),
    claims: ({ issuer, audience, iat, exp }) => ({
      aud: [audience],
      exp,
      iat,
      iss: issuer,
      jti: randomUUID(),
      'kubernetes.io': {
        namespace: workload.namespace,
        node: { ...workload.node },
        pod: { ...workload.pod },
        serviceaccount: { ...workload.serviceAccount },
      },
      nbf: iat,
      sub: `system:serviceaccount:${workload.namespace}:${workload.serviceAccount.name}`,
    }),
    derive: (claims) => {
      const scope = claims['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } };
      return {
        sub: `system:serviceaccount:${String(scope?.namespace)}:${String(scope?.serviceaccount?.name)}`,
      };
    },
  } satisfies ShapeProfile & { readonly workload: KubernetesWorkload };
  return profile;
}

/**
 * An HCP Terraform (Terraform Cloud) workload identity token for one run phase.
 * https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/workload-identity-tokens
 */
export function terraformCloudProfile(): ShapeProfile {
  const ids = {
    organization: `org-${randomBase58(16)}`,
    project: `prj-${randomBase58(16)}`,
    workspace: `ws-${randomBase58(16)}`,
    run: `run-${randomBase58(16)}`,
  };
  const profile: ShapeProfile = {
    kidStyle: 'jwk-thumbprint',
    ttlSeconds: 300,
    routes: { token: '/token', jwks: '/.well-known/jwks' },
    header: () => ({ typ: 'JWT' }),
    claims: ({ issuer, audience, iat, exp }) => {
      const claims: Claims = {
        jti: randomUUID(),
        iss: issuer,
        aud: audience,
        iat,
        nbf: iat - 5,
        exp,
        sub: '',
        terraform_organization_id: ids.organization,
        terraform_organization_name: 'my-org',
        terraform_project_id: ids.project,
        terraform_project_name: 'Default Project',
        terraform_workspace_id: ids.workspace,
        terraform_workspace_name: 'my-workspace',
        terraform_full_workspace: '',
        terraform_run_id: ids.run,
        terraform_run_phase: 'apply',
      };
      return { ...claims, ...profile.derive?.(claims) };
    },
    derive: (claims) => {
      const workspace = `organization:${stringClaim(claims, 'terraform_organization_name')}:project:${stringClaim(claims, 'terraform_project_name')}:workspace:${stringClaim(claims, 'terraform_workspace_name')}`;
      return {
        sub: `${workspace}:run_phase:${stringClaim(claims, 'terraform_run_phase')}`,
        terraform_full_workspace: workspace,
      };
    },
  };
  return profile;
}
