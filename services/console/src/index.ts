export { buildConsole, type ConsoleDeps, type RunningConsole } from './app.js';
export { type ConsoleConfig, ConsoleEnv, loadConsoleConfig } from './config.js';
