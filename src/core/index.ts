// Core exports: errors, registry, shared types, the model config (dense and MoE).
export * from './errors.js';
export * from './registry.js';
export * from './types.js';
export * from './model.js';
export * from './moe.js';
export * from './random.js';
export * from './schema.js';
