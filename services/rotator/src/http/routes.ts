import { type HttpHandler, sendJson } from '@aoa/core';
import type { RotatorMetrics } from '../metrics.js';

export interface RotatorHttpDeps {
  metrics: RotatorMetrics;
  /** Reasons the rotator is not ready; empty when ready. */
  notReady(): string[];
}

/** The rotator's HTTP surface: health, readiness and metrics. */
export function rotatorRoutes(deps: RotatorHttpDeps): Record<string, HttpHandler> {
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
