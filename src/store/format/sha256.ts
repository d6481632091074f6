// SHA-256 in hex: the checksum of shard files, the manifest sha, the schema hash and the fingerprint.
import { createHash } from 'node:crypto';

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
