export * from './capture-logs.js';
export * from './database.js';
export * from './free-port.js';
export * from './idp.js';
export * from './nats-binary.js';
export * from './nats-server.js';
export * from './postgres-server.js';
export * from './vendor-idp.js';
