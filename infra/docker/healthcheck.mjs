#!/usr/bin/env node
// The image's HEALTHCHECK: GET /healthz on the running service's HTTP listener, exit 0 when it answers
// 200, 1 otherwise (within 2 s). One image runs every service, so the service is found from its
// listener variable (AOA_<SERVICE>_HTTP_LISTEN, when exactly one is set) or from PID 1's command line
// (the entrypoint execs node on services/<name>/dist/main.js); its default port applies when the
// variable is unset. The agent has no listener: a running agent process is a healthy one.
// Kubernetes ignores HEALTHCHECK and uses the probes in infra/k8s/ instead.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const DEFAULT_HTTP_PORTS = { issuer: 7402, revoker: 7412, rotator: 7422, auditor: 7432, console: 7440 };
const TIMEOUT_MS = 2000;

function fromEnvironment() {
  const set = Object.keys(DEFAULT_HTTP_PORTS).filter(
    (name) => process.env[`AOA_${name.toUpperCase()}_HTTP_LISTEN`],
  );
  return set.length === 1 ? set[0] : undefined;
}

function fromPid1() {
  try {
    const args = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    if (args.some((arg) => arg.endsWith('packages/cli/dist/main.js'))) return 'agent';
    for (const arg of args) {
      const match = /services\/(issuer|revoker|rotator|auditor|console)\/dist\/main\.js$/.exec(arg);
      if (match) return match[1];
    }
  } catch {
    // Not Linux, or no /proc: fall through.
  }
  return undefined;
}

/** `host:port` (or `[v6]:port`) of a listener, with a wildcard host asked on loopback. */
function target(service) {
  const listen = process.env[`AOA_${service.toUpperCase()}_HTTP_LISTEN`];
  if (!listen) return { host: '127.0.0.1', port: DEFAULT_HTTP_PORTS[service] };
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(at + 1));
  return { host: host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host, port };
}

const service = fromEnvironment() ?? fromPid1();
if (service === 'agent') process.exit(0);
if (!service) {
  console.error('healthcheck: cannot tell which aoa service runs here; set AOA_<SERVICE>_HTTP_LISTEN');
  process.exit(1);
}
const { host, port } = target(service);
// With AOA_TLS_CERT_FILE the listener speaks TLS; this local check asks whether the process answers,
// not whether its certificate matches the loopback name.
const tls = Boolean(process.env.AOA_TLS_CERT_FILE);
const request = tls ? httpsRequest : httpRequest;
const req = request(
  { host, port, path: '/healthz', method: 'GET', timeout: TIMEOUT_MS, rejectUnauthorized: false },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
req.on('error', (error) => {
  console.error(`healthcheck: ${service} at ${host}:${port}: ${error.message}`);
  process.exit(1);
});
req.end();
