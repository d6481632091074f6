// A benchmark's work folder: made under the system's temp directory and removed when the process exits, however it
// exits (its contents are the measurement's own inputs and outputs). A module the benchmarks share, not a benchmark.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh folder named `<prefix>XXXXXX` in the temp directory, removed on exit. */
export function benchTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
