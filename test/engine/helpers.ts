// Test helpers for the engine suites: run with a given OpenMP thread count, then restore the default.
import { loadNative } from '../../src/native/loader.js';

export function setThreads(n: number): () => void {
  const { addon } = loadNative();
  const before = addon.info().threads;
  addon.setNumThreads(n);
  return () => addon.setNumThreads(before);
}
