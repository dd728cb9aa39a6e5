export * from './audit-outbox.js';
export * from './authority.js';
export * from './grant-registry.js';
export * from './kv-store.js';
export * from './target.js';
export * from './write.js';
export * from './writer.js';
