import { type HttpHandler, sendJson } from '@aoa/core';
import type { AuditorMetrics } from '../metrics.js';

export interface AuditorHttpDeps {
  metrics: AuditorMetrics;
  /** Reasons the auditor is not ready; empty when ready. */
  notReady(): string[];
}

/** The auditor's HTTP surface: health, readiness and metrics. */
export function auditorRoutes(deps: AuditorHttpDeps): Record<string, HttpHandler> {
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
