export { buildRotator, type RotatorDeps, type RunningRotator } from './app.js';
export { loadRotatorConfig, type RotatorConfig, RotatorEnv } from './config.js';
