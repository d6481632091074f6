// Core exports: errors, registry, shared types.
export * from './errors.js';
export * from './registry.js';
export * from './types.js';
export * from './model.js';
export * from './random.js';
