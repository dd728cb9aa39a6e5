import { type HttpHandler, sendJson } from '@aoa/core';
import type { RevokerMetrics } from '../metrics.js';

export interface RevokerHttpDeps {
  metrics: RevokerMetrics;
  /** Reasons the revoker is not ready; empty when ready. */
  notReady(): string[];
}

/** The revoker's HTTP surface: health, readiness and metrics. */
export function revokerRoutes(deps: RevokerHttpDeps): Record<string, HttpHandler> {
  return {
    'GET /healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    'GET /readyz': (_req, res) => {
      const problems = deps.notReady();
      sendJson(res, problems.length === 0 ? 200 : 503, { ready: problems.length === 0, problems });
    },
    'GET /metrics': async (_req, res) => {
      const body = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
      res.end(body);
    },
  };
}
