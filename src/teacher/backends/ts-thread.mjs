// Worker-thread bootstrap for runs from the TypeScript sources (tsx, vitest). Node 20 cannot start a thread
// on a .ts file, and a thread does not inherit the parent's loaders, so this plain module registers tsx in
// the thread and then imports the entry passed as its last argv. Builds in dist/ start the compiled entry directly.
import { register } from 'tsx/esm/api';

const entry = process.argv.at(-1);
if (!entry?.startsWith('file:'))
  throw new Error(`ts-thread.mjs: expected the entry's file URL as the last argv, got ${entry}`);
register();
await import(entry);
