// Global test setup: checks the native addon was built, gives the run a temp folder of its own, then starts the
// services suites need. Each service lives in its own file under test/setup/ and exports
// start(): Promise<() => Promise<void>>.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const services: Array<() => Promise<{ start: () => Promise<() => Promise<void>> }>> = [() => import('./s3.js')];

export default async function setup(): Promise<() => Promise<void>> {
  const dir = process.env.DISTILLERY_NATIVE_DIR ?? path.resolve('cuda/build');
  const cpu = path.join(dir, 'Release', 'distillery_cpu.node');
  if (!existsSync(cpu)) {
    throw new Error(
      `the native addon is not built (${cpu} is missing): run \`npm ci\` or \`npm run build:native\` first`,
    );
  }
  // One line instead of a puzzle: why the CUDA kernel suites (test/**/*.gpu.test.ts) report their tests as skipped.
  const { cudaAvailable } = await import('../../src/native/loader.js');
  if (!cudaAvailable())
    console.log(
      'distillery: no CUDA device is visible, so the CUDA kernel tests (test/**/*.gpu.test.ts) are skipped; they run where `distill info` lists one',
    );
  // Every temp folder of the run (the suites', the CLI children's, the services') under one folder, removed when the
  // run ends: os.tmpdir() reads TMPDIR at each call, and the test workers and their children inherit it. Kept, and
  // named, with DISTILLERY_KEEP_TEST_TMP=1, for looking at a failed run's files.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'distillery-test-'));
  process.env.TMPDIR = tmp;
  const stops: Array<() => Promise<void>> = [];
  const teardown = async () => {
    for (const stop of stops.reverse()) await stop();
    if (process.env.DISTILLERY_KEEP_TEST_TMP) console.log(`distillery: the run's temp files are kept in ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  };
  try {
    for (const load of services) stops.push(await (await load()).start());
  } catch (err) {
    // A service that fails to start fails the run before vitest has a teardown to call: stop those already started
    // and remove the run's folder here.
    await teardown();
    throw err;
  }
  return teardown;
}
