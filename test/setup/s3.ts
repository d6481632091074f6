// A real local S3-compatible server (s3rver) for the cache's S3 tests: started once per test run on a
// free loopback port, storing under a temp dir. Tests read DISTILLERY_TEST_S3_ENDPOINT / _BUCKET.
// s3rver does not enforce conditional writes (If-None-Match) nor list multipart uploads.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEST_BUCKET = 'distillery-test';

export async function start(): Promise<() => Promise<void>> {
  const { default: S3rver } = await import('s3rver');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'distillery-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: TEST_BUCKET }],
  });
  const { address, port } = await server.run();
  process.env.DISTILLERY_TEST_S3_ENDPOINT = `http://${address}:${port}`;
  process.env.DISTILLERY_TEST_S3_BUCKET = TEST_BUCKET;
  return async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
}
