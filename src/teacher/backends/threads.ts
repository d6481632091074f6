// Starts a backend's worker thread from a real entry file beside the caller: the compiled `.js` under dist/,
// or, from the TypeScript sources (tsx, vitest), the plain bootstrap ts-thread.mjs, which registers tsx in the
// thread and imports the `.ts` entry (Node 20 cannot start a thread on a .ts file, nor pass it the parent's loaders).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** `entry` is the entry's path without extension, relative to the module at `callerUrl` (its import.meta.url). */
export function startThread(callerUrl: string, entry: string, workerData: unknown): Worker {
  const caller = fileURLToPath(callerUrl);
  const fromSources = caller.endsWith('.ts');
  const file = path.resolve(path.dirname(caller), `${entry}${fromSources ? '.ts' : '.js'}`);
  if (!fromSources) return new Worker(file, { workerData });
  const boot = fileURLToPath(new URL('./ts-thread.mjs', import.meta.url));
  if (!existsSync(boot)) throw new Error(`missing ${boot}: the sources are incomplete`);
  return new Worker(boot, { workerData, argv: [pathToFileURL(file).href] });
}
