export * as events from './gen/aoa/v1/events.js';
export * as issuer from './gen/aoa/v1/issuer.js';
export * as health from './gen/grpc/health/v1/health.js';
