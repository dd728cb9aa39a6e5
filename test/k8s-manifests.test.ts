import assert from 'node:assert/strict';
import { execFileSync, type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findNatsServerBinary, NATS_INSTALL_HINT } from '@aoa/testkit';
import { parseAllDocuments } from 'yaml';

// infra/k8s as kubectl renders it: each overlay's workloads, probes, security context, Secrets, NATS
// users, replica counts and network policies, checked against the services' configuration and
// infra/nats/auth.conf. A missing kubectl fails the run: CI installs it (.ci/run).

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const K8S = join(ROOT, 'infra', 'k8s');
const KUBECTL_HINT =
  'kubectl is required to render infra/k8s (`kubectl kustomize`): apt-get install -y kubernetes-client ' +
  "(Debian's kubectl 1.20 works), or any kubectl 1.14+; or set KUBECTL to its path";

const SERVICES = ['issuer', 'revoker', 'rotator', 'auditor'] as const;
type ServiceName = (typeof SERVICES)[number];
/** The listeners each service's config.ts defaults to (AOA_<NAME>_GRPC_LISTEN, AOA_<NAME>_HTTP_LISTEN). */
const DEFAULT_PORTS: Record<ServiceName, { grpc: number; http: number }> = {
  issuer: { grpc: 7401, http: 7402 },
  revoker: { grpc: 7411, http: 7412 },
  rotator: { grpc: 7421, http: 7422 },
  auditor: { grpc: 7431, http: 7432 },
};

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
  exec?: { command: string[] };
}
interface Container {
  name: string;
  args?: string[];
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[] };
  seccompProfile?: { type: string };
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string }> };
  configMap?: { name: string };
}
interface PodSpec {
  containers: Container[];
  securityContext?: SecurityContext;
  volumes?: Volume[];
}
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}
interface PolicyPort {
  port: number;
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    replicas?: number;
    serviceName?: string;
    selector?: Selector;
    podSelector?: Selector;
    policyTypes?: string[];
    egress?: Array<{ ports?: PolicyPort[] }>;
    ingress?: Array<{ ports?: PolicyPort[] }>;
    template?: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}

/** The kubectl to use: $KUBECTL, else the first on PATH; throws with the install hint when there is none. */
function findKubectl(): string {
  const explicit = process.env.KUBECTL;
  const candidates = explicit
    ? [explicit]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'kubectl'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not this one.
    }
  }
  throw new Error(explicit ? `KUBECTL=${explicit} is not executable; ${KUBECTL_HINT}` : KUBECTL_HINT);
}

function render(kubectl: string, dir: string): Manifest[] {
  const result = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(result.status, 0, `kubectl kustomize ${dir} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null);
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  assert.ok(found, `${kind}/${name} is rendered`);
  return found;
}

/** A generated ConfigMap, whatever its hash suffix (aoa-settings-7c9...). */
function generated(manifests: Manifest[], name: string): Manifest {
  const found = manifests.find(
    (m) => m.kind === 'ConfigMap' && new RegExp(`^${name}(-[a-z0-9]+)?$`).test(m.metadata.name),
  );
  assert.ok(found, `ConfigMap ${name} is rendered`);
  return found;
}

function workloads(manifests: Manifest[]): Manifest[] {
  return manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
}

function podSpec(workload: Manifest): PodSpec {
  const spec = workload.spec?.template?.spec;
  assert.ok(spec, `${workload.kind}/${workload.metadata.name} has a pod template`);
  return spec;
}

/** A container's environment as the pod sees it: envFrom ConfigMaps first, then env values. */
function resolvedEnv(manifests: Manifest[], container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, find(manifests, 'ConfigMap', source.configMapRef.name).data);
  }
  for (const item of container.env ?? []) if (item.value !== undefined) env[item.name] = item.value;
  return env;
}

function matches(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpressions = (selector.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key];
    if (expression.operator === 'In') return value !== undefined && (expression.values ?? []).includes(value);
    if (expression.operator === 'Exists') return value !== undefined;
    throw new Error(`test: selector operator ${expression.operator} not handled`);
  });
  return byLabels && byExpressions;
}

/** TCP/UDP ports a pod with these labels may reach (egress) or be reached on (ingress), over all policies. */
function allowedPorts(
  manifests: Manifest[],
  labels: Record<string, string>,
  direction: 'egress' | 'ingress',
) {
  const ports = new Set<number>();
  for (const policy of manifests.filter((m) => m.kind === 'NetworkPolicy')) {
    if (!matches(policy.spec?.podSelector, labels)) continue;
    for (const rule of policy.spec?.[direction] ?? [])
      for (const port of rule.ports ?? []) ports.add(port.port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** `user: x` then `password: $VAR` in infra/nats/auth.conf's users list. */
function authConfUsers(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const match of text.matchAll(/^\s*user:\s*([\w-]+)\s*\n\s*password:\s*\$(\w+)/gm)) {
    users.set(match[1] as string, match[2] as string);
  }
  return users;
}

const AUTH_CONF = readFileSync(join(ROOT, 'infra', 'nats', 'auth.conf'), 'utf8');
const USERS = authConfUsers(AUTH_CONF);

interface Rendered {
  kubectl: string;
  work: string;
  secrets: Manifest[];
  overlays: Record<'dev' | 'ha', Manifest[]>;
}
let state: Rendered | undefined;
const workDirs: string[] = [];

/**
 * Renders once, on first use, so that a missing kubectl fails every test with the install hint
 * (a failing `before` hook would only cancel them).
 */
function rendered(): Rendered {
  if (state) return state;
  const kubectl = findKubectl();
  // The Secrets kustomization reads files generate.sh writes (never committed): render a copy.
  const work = mkdtempSync(join(tmpdir(), 'aoa-k8s-'));
  workDirs.push(work);
  mkdirSync(join(work, 'secrets'));
  cpSync(join(K8S, 'secrets', 'kustomization.yaml'), join(work, 'secrets', 'kustomization.yaml'));
  cpSync(join(K8S, 'secrets', 'generate.sh'), join(work, 'secrets', 'generate.sh'));
  execFileSync('sh', [join(work, 'secrets', 'generate.sh')], { stdio: 'pipe' });
  const secrets = render(kubectl, join(work, 'secrets'));
  const overlays = {
    dev: render(kubectl, join(K8S, 'overlays', 'dev')),
    ha: render(kubectl, join(K8S, 'overlays', 'ha')),
  };
  state = { kubectl, work, secrets, overlays };
  return state;
}

after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

function overlay(name: 'dev' | 'ha'): Manifest[] {
  return rendered().overlays[name];
}

describe('infra/k8s renders with kubectl kustomize', () => {
  it('auth.conf lists one NATS user per service', () => {
    for (const service of SERVICES) assert.ok(USERS.has(service), `auth.conf has user ${service}`);
  });

  for (const name of ['dev', 'ha'] as const) {
    describe(`overlay ${name}`, () => {
      it('renders every kind the system needs, each service with its Service, PDB and NetworkPolicy', () => {
        const manifests = overlay(name);
        for (const service of SERVICES) {
          find(manifests, 'Deployment', `aoa-${service}`);
          find(manifests, 'Service', `aoa-${service}`);
          find(manifests, 'PodDisruptionBudget', `aoa-${service}`);
          find(manifests, 'NetworkPolicy', `aoa-${service}`);
          find(manifests, 'ServiceAccount', `aoa-${service}`);
        }
        find(manifests, 'StatefulSet', 'aoa-nats');
        find(manifests, 'Service', 'aoa-nats');
        find(manifests, 'Service', 'aoa-nats-headless');
        find(manifests, 'PodDisruptionBudget', 'aoa-nats');
        find(manifests, 'NetworkPolicy', 'aoa-default-deny');
        for (const config of ['aoa-settings', 'aoa-policy', 'aoa-nats-config']) generated(manifests, config);
        if (name === 'dev') find(manifests, 'StatefulSet', 'aoa-postgres');
        for (const pdb of manifests.filter((m) => m.kind === 'PodDisruptionBudget')) {
          const target = workloads(manifests).find((w) =>
            matches(pdb.spec?.selector, w.spec?.template?.metadata.labels ?? {}),
          );
          assert.ok(target, `PodDisruptionBudget/${pdb.metadata.name} selects a workload`);
        }
      });

      it('gives every container readiness and liveness probes on paths and ports that exist', () => {
        for (const workload of workloads(overlay(name))) {
          const pod = podSpec(workload);
          const app = workload.spec?.template?.metadata.labels['app.kubernetes.io/name'] ?? '';
          for (const container of pod.containers) {
            const where = `${workload.metadata.name}/${container.name}`;
            for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
              const probe = container[kind];
              assert.ok(probe, `${where} has a ${kind}`);
              if (probe.exec) {
                assert.ok(probe.exec.command.length > 0, `${where} ${kind} runs a command`);
                continue;
              }
              assert.ok(probe.httpGet, `${where} ${kind} is an HTTP or exec probe`);
              const port = (container.ports ?? []).find(
                (p) => p.name === probe.httpGet?.port || p.containerPort === probe.httpGet?.port,
              );
              assert.ok(port, `${where} ${kind} port ${probe.httpGet.port} is a container port`);
              if ((SERVICES as readonly string[]).includes(app)) {
                const service = app as ServiceName;
                const listen = resolvedEnv(overlay(name), container)[
                  `AOA_${service.toUpperCase()}_HTTP_LISTEN`
                ];
                assert.ok(listen, `${where} sets AOA_${service.toUpperCase()}_HTTP_LISTEN`);
                assert.match(
                  listen,
                  /^0\.0\.0\.0:\d+$/,
                  `${where} listens beyond loopback, where the kubelet probes`,
                );
                assert.equal(
                  Number(listen.split(':')[1]),
                  port.containerPort,
                  `${where} ${kind} probes its HTTP listener`,
                );
                assert.equal(
                  port.containerPort,
                  DEFAULT_PORTS[service].http,
                  `${where} keeps the documented port`,
                );
                const expected = kind === 'readinessProbe' ? '/readyz' : '/healthz';
                assert.equal(probe.httpGet.path, expected, `${where} ${kind} path`);
              } else {
                assert.equal(app, 'nats', `${where}: only NATS has other HTTP probes`);
                assert.match(
                  probe.httpGet.path,
                  /^\/healthz(\?|$)/,
                  `${where} ${kind} asks the monitor's /healthz`,
                );
              }
            }
          }
        }
      });

      it('runs every container as non-root, read-only, without capabilities, with requests', () => {
        for (const workload of workloads(overlay(name))) {
          const pod = podSpec(workload);
          for (const container of pod.containers) {
            const where = `${workload.metadata.name}/${container.name}`;
            const context = { ...pod.securityContext, ...container.securityContext };
            assert.equal(context.runAsNonRoot, true, `${where} runAsNonRoot`);
            assert.notEqual(context.runAsUser, 0, `${where} runAsUser is not root`);
            assert.equal(context.readOnlyRootFilesystem, true, `${where} readOnlyRootFilesystem`);
            assert.equal(context.allowPrivilegeEscalation, false, `${where} allowPrivilegeEscalation`);
            assert.deepEqual(context.capabilities?.drop, ['ALL'], `${where} drops ALL capabilities`);
            assert.equal(context.seccompProfile?.type, 'RuntimeDefault', `${where} seccompProfile`);
            assert.ok(container.resources?.requests?.cpu, `${where} requests cpu`);
            assert.ok(container.resources?.requests?.memory, `${where} requests memory`);
          }
        }
      });

      it('defines every Secret and ConfigMap a pod refers to, with the keys it reads', () => {
        const manifests = [...overlay(name), ...rendered().secrets];
        const secretKeys = (secretName: string) =>
          Object.keys(find(manifests, 'Secret', secretName).data ?? {}).sort();
        for (const workload of workloads(overlay(name))) {
          const pod = podSpec(workload);
          for (const volume of pod.volumes ?? []) {
            if (volume.secret) {
              const keys = secretKeys(volume.secret.secretName);
              for (const item of volume.secret.items ?? []) assert.ok(keys.includes(item.key));
            }
            if (volume.configMap) find(manifests, 'ConfigMap', volume.configMap.name);
          }
          for (const container of pod.containers) {
            for (const item of container.env ?? []) {
              const ref = item.valueFrom?.secretKeyRef;
              if (ref)
                assert.ok(secretKeys(ref.name).includes(ref.key), `Secret ${ref.name} has key ${ref.key}`);
            }
            for (const source of container.envFrom ?? []) {
              if (source.secretRef) find(manifests, 'Secret', source.secretRef.name);
              if (source.configMapRef) find(manifests, 'ConfigMap', source.configMapRef.name);
            }
          }
        }
      });

      it('gives each service its own NATS user from auth.conf, with the password NATS checks', () => {
        const manifests = overlay(name);
        const nats = podSpec(find(manifests, 'StatefulSet', 'aoa-nats')).containers[0];
        assert.ok(nats);
        const natsEnv = new Map((nats.env ?? []).map((item) => [item.name, item.valueFrom?.secretKeyRef]));
        for (const [user, variable] of USERS) {
          assert.ok(natsEnv.get(variable), `nats-server reads $${variable} (user ${user}) from a Secret`);
        }
        for (const service of SERVICES) {
          const deployment = find(manifests, 'Deployment', `aoa-${service}`);
          const pod = podSpec(deployment);
          const container = pod.containers[0];
          assert.ok(container);
          const env = resolvedEnv(manifests, container);
          assert.equal(env.NATS_USER, service, `aoa-${service} connects as NATS user ${service}`);
          const passwordFile = env.NATS_PASSWORD_FILE;
          assert.ok(passwordFile, `aoa-${service} sets NATS_PASSWORD_FILE`);
          const mount = (container.volumeMounts ?? []).find((m) =>
            passwordFile.startsWith(`${m.mountPath}/`),
          );
          assert.ok(mount, `aoa-${service}: NATS_PASSWORD_FILE is on a mounted volume`);
          const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
          const key = passwordFile.slice(mount.mountPath.length + 1);
          const expected = natsEnv.get(USERS.get(service) as string);
          assert.deepEqual(
            { name: volume?.secret?.secretName, key },
            { name: expected?.name, key: expected?.key },
            `aoa-${service} reads the password nats-server checks for user ${service}`,
          );
        }
      });

      it("has the issuer and the rotator keep the apps' mirrors where auth.conf imports APPS's JetStream API", () => {
        const manifests = overlay(name);
        const imported = /to: "(\$JS\.[\w.]+)\.STREAM\.CREATE\.\*"/.exec(AUTH_CONF)?.[1];
        assert.ok(imported, 'auth.conf imports the APPS JetStream API');
        for (const service of ['issuer', 'rotator']) {
          const container = podSpec(find(manifests, 'Deployment', `aoa-${service}`)).containers[0];
          assert.ok(container);
          assert.equal(resolvedEnv(manifests, container).AOA_NATS_APPS_API, imported, `aoa-${service}`);
        }
      });

      it('ships infra/nats/auth.conf and infra/dev-policy.yaml unchanged (copies under infra/k8s/base)', () => {
        const manifests = overlay(name);
        assert.equal(
          generated(manifests, 'aoa-nats-config').data?.['auth.conf'],
          AUTH_CONF,
          'infra/k8s/base/nats/auth.conf differs from infra/nats/auth.conf: copy it again',
        );
        assert.equal(
          generated(manifests, 'aoa-policy').data?.['policy.yaml'],
          readFileSync(join(ROOT, 'infra', 'dev-policy.yaml'), 'utf8'),
          'infra/k8s/base/policy.yaml differs from infra/dev-policy.yaml: copy it again',
        );
      });

      it('lets each pod reach only what it needs', () => {
        const manifests = overlay(name);
        const labels = (app: string) => ({
          'app.kubernetes.io/name': app,
          'app.kubernetes.io/part-of': 'aoa',
        });
        const deny = find(manifests, 'NetworkPolicy', 'aoa-default-deny');
        assert.deepEqual(deny.spec?.policyTypes, ['Ingress', 'Egress']);
        for (const workload of workloads(manifests)) {
          const podLabels = workload.spec?.template?.metadata.labels ?? {};
          assert.ok(
            matches(deny.spec?.podSelector, podLabels),
            `${workload.metadata.name} is under default deny`,
          );
        }
        const egress: Record<string, number[]> = {
          issuer: [53, 443, 4222],
          rotator: [53, 443, 4222],
          revoker: [53, 4222],
          auditor: [53, 4222, 5432],
          nats: [53, 6222],
        };
        for (const [app, ports] of Object.entries(egress)) {
          assert.deepEqual(allowedPorts(manifests, labels(app), 'egress'), ports, `${app} egress`);
        }
        for (const service of SERVICES) {
          const { grpc, http } = DEFAULT_PORTS[service];
          assert.deepEqual(
            allowedPorts(manifests, labels(service), 'ingress'),
            [grpc, http],
            `${service} ingress`,
          );
        }
        assert.deepEqual(
          allowedPorts(manifests, labels('nats'), 'ingress'),
          [4222, 6222, 8222],
          'nats ingress',
        );
      });

      it('annotates each service for Prometheus on its HTTP listener', () => {
        for (const service of SERVICES) {
          const annotations = find(overlay(name), 'Deployment', `aoa-${service}`).spec?.template?.metadata
            .annotations;
          assert.equal(annotations?.['prometheus.io/scrape'], 'true');
          assert.equal(annotations?.['prometheus.io/port'], String(DEFAULT_PORTS[service].http));
          assert.equal(annotations?.['prometheus.io/path'], '/metrics');
        }
      });
    });
  }

  it('dev runs one of everything on a single NATS server with R1 streams', () => {
    const manifests = overlay('dev');
    for (const service of SERVICES)
      assert.equal(find(manifests, 'Deployment', `aoa-${service}`).spec?.replicas, 1);
    assert.equal(find(manifests, 'StatefulSet', 'aoa-nats').spec?.replicas, 1);
    assert.equal(generated(manifests, 'aoa-settings').data?.AOA_NATS_REPLICAS, '1');
    assert.doesNotMatch(generated(manifests, 'aoa-nats-config').data?.['nats.conf'] ?? '', /cluster\s*\{/);
  });

  it('ha runs two of each service and a 3-node NATS cluster, with every stream and bucket R3', () => {
    const manifests = overlay('ha');
    for (const service of SERVICES) {
      assert.equal(
        find(manifests, 'Deployment', `aoa-${service}`).spec?.replicas,
        2,
        `aoa-${service} replicas`,
      );
    }
    const nats = find(manifests, 'StatefulSet', 'aoa-nats');
    assert.equal(nats.spec?.replicas, 3);
    const conf = generated(manifests, 'aoa-nats-config').data?.['nats.conf'] ?? '';
    const routes = [...conf.matchAll(/nats-route:\/\/([\w.-]+):6222/g)].map((m) => m[1]);
    assert.deepEqual(
      routes,
      [0, 1, 2].map((n) => `aoa-nats-${n}.${nats.spec?.serviceName}`),
      'the cluster routes name each pod of the StatefulSet through its headless service',
    );
    for (const service of SERVICES) {
      const container = podSpec(find(manifests, 'Deployment', `aoa-${service}`)).containers[0];
      assert.ok(container);
      const env = resolvedEnv(manifests, container);
      assert.equal(env.AOA_NATS_REPLICAS, '3', `aoa-${service} creates R3 streams and buckets`);
      assert.equal(env.NATS_URL?.split(',').length, 3, `aoa-${service} knows every NATS node`);
    }
  });

  it("nats-server accepts each overlay's configuration with the users' passwords from its environment", () => {
    const bin = findNatsServerBinary();
    assert.ok(bin, `no nats-server: ${NATS_INSTALL_HINT}`);
    for (const name of ['dev', 'ha'] as const) {
      const data = generated(overlay(name), 'aoa-nats-config').data ?? {};
      const dir = join(rendered().work, `nats-${name}`);
      mkdirSync(dir);
      for (const [file, text] of Object.entries(data)) writeFileSync(join(dir, file), text);
      const env: Record<string, string> = { PATH: process.env.PATH ?? '', POD_NAME: 'aoa-nats-0' };
      for (const variable of USERS.values()) env[variable] = 'ptest';
      const result: SpawnSyncReturns<string> = spawnSync(bin, ['-c', join(dir, 'nats.conf'), '-t'], {
        encoding: 'utf8',
        env,
      });
      assert.equal(result.status, 0, `nats-server -t (${name}):\n${result.stdout}${result.stderr}`);
    }
  });
});

describe('infra/k8s/console: the web console beside an overlay', () => {
  const consoleManifests = () => render(rendered().kubectl, join(K8S, 'console'));
  const labels = { 'app.kubernetes.io/name': 'console', 'app.kubernetes.io/part-of': 'aoa' };

  it('runs one non-root, read-only replica probed on its HTTP listener, its secrets from aoa-console', () => {
    const manifests = consoleManifests();
    const deployment = find(manifests, 'Deployment', 'aoa-console');
    const pod = podSpec(deployment);
    const [container] = pod.containers;
    assert.ok(container);
    const context = { ...pod.securityContext, ...container.securityContext };
    assert.equal(context.runAsNonRoot, true);
    assert.equal(context.readOnlyRootFilesystem, true);
    assert.deepEqual(context.capabilities?.drop, ['ALL']);
    const env = resolvedEnv(manifests, container);
    assert.equal(env.AOA_CONSOLE_HTTP_LISTEN, '0.0.0.0:7440');
    assert.deepEqual(container.ports, [{ name: 'http', containerPort: 7440 }]);
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    const secret = pod.volumes?.find((v) => v.secret)?.secret?.secretName;
    assert.equal(secret, 'aoa-console');
    assert.match(env.AOA_CONSOLE_CLIENT_KEY_FILE ?? '', /^\/run\/secrets\/aoa\/console\//);
    assert.match(env.AOA_CONSOLE_OIDC_CLIENT_SECRET_FILE ?? '', /^\/run\/secrets\/aoa\/console\//);
  });

  it('names each service by the gRPC URL the base gives that service (the htu of its DPoP proofs)', () => {
    const manifests = consoleManifests();
    const settings = generated(manifests, 'aoa-console-settings').data ?? {};
    const base = generated(overlay('dev'), 'aoa-settings').data ?? {};
    for (const service of ['AUDITOR', 'REVOKER', 'ROTATOR']) {
      const key = `AOA_${service}_GRPC_URL`;
      assert.ok(base[key], `the base sets ${key}`);
      assert.equal(settings[key], base[key], key);
    }
    assert.equal(settings.AOA_ISSUER_URL, base.AOA_ISSUER_URL);
  });

  it('lets the console be reached on 7440 and reach only the services and HTTPS', () => {
    const manifests = consoleManifests();
    assert.deepEqual(allowedPorts(manifests, labels, 'ingress'), [7440]);
    assert.deepEqual(allowedPorts(manifests, labels, 'egress'), [443, 7401, 7411, 7421, 7431]);
    const base = overlay('dev');
    assert.ok(
      matches(find(base, 'NetworkPolicy', 'aoa-default-deny').spec?.podSelector, labels),
      'under default deny',
    );
    assert.ok(matches(find(base, 'NetworkPolicy', 'aoa-dns').spec?.podSelector, labels), 'DNS from the base');
  });
});
