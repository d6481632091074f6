// The reading order (docs/cache-format.md §6): a pure function of the cache's content key, the seed and the epoch,
// so that a cache rebuilt from the same inputs trains students in the same order.
import { createHash } from 'node:crypto';
import { invariant } from '../../core/errors.js';
import { mulberry32 } from '../../core/random.js';
import type { Manifest } from '../api.js';
import { sha256Hex } from '../format/sha256.js';

/**
 * The content key of a cache's reading order: SHA-256 of the fingerprint and every shard's row count.
 * Two caches with the same content (the same inputs, so the same fingerprint) read in the same order,
 * whatever their creation time, writer ids or attempt names, so a rebuilt cache trains identically.
 */
export function orderKeyFor(manifest: Pick<Manifest, 'fingerprint' | 'shards'>): string {
  return sha256Hex(`${manifest.fingerprint}:${manifest.shards.map((r) => r.rows).join(',')}`);
}

/** The epoch's shard order: Fisher–Yates driven by mulberry32 seeded from the first 4 bytes of SHA-256(orderKey:seed:epoch). */
export function shardOrderFor(orderKey: string, numShards: number, seed: number, epoch: number): number[] {
  const h = createHash('sha256').update(`${orderKey}:${seed}:${epoch}`).digest();
  const rnd = mulberry32(h.readUInt32LE(0));
  const order = Array.from({ length: numShards }, (_, i) => i);
  for (let i = numShards - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const a = order[i];
    const b = order[j];
    invariant(a !== undefined && b !== undefined, 'shuffle indices lie in 0..numShards-1');
    order[i] = b;
    order[j] = a;
  }
  return order;
}
