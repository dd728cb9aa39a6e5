export * as auditor from './gen/aoa/v1/auditor.js';
export * as events from './gen/aoa/v1/events.js';
export * as issuer from './gen/aoa/v1/issuer.js';
export * as revoker from './gen/aoa/v1/revoker.js';
export * as rotator from './gen/aoa/v1/rotator.js';
export * as rpc from './gen/google/rpc/status.js';
export * as health from './gen/grpc/health/v1/health.js';

import { fileURLToPath } from 'node:url';

/** The `.proto` sources, for server reflection (`@grpc/proto-loader`) and `buf curl`. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));
