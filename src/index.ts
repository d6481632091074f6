// Distillery's public API. Each module re-exports its public surface here.
export * from './core/index.js';
export * from './native/index.js';
export { systemInfo } from './info.js';
export type { SystemInfo } from './info.js';
export * from './charts/index.js';
export * from './engine/index.js';
export * from './engine/hf/index.js';
export * from '../losses/index.js';
export * from '../schedules/index.js';
export * from './data/index.js';
export * from './student/index.js';
export * from './store/index.js';
export * from './eval/index.js';
export * from './teacher/index.js';
export * from './demo/index.js';
