// Cache sequences in the trainer's reading order: as the reader yields them (shards in the epoch's seeded
// order, each shard's sequences in file order), or block-shuffled — the epoch's shards grouped into blocks
// of at least `blockRows` rows, every block read whole and its sequences visited in a seeded permutation,
// so a batch mixes sequences from many shards whatever their size. Both resume exactly from a cursor.
import { DistillError } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';
import type { CacheReader, CacheSequence } from '../store/api.js';

/** Where the stream stands: position = rows of the epoch before the next unread sequence (in order) or block. */
export interface StreamCursor {
  epoch: number;
  position: number;
  /** Block shuffling: the block size and how many of the current block's sequences were taken. */
  shuffle?: { blockRows: number; taken: number };
}

export interface SequenceStream {
  next(): Promise<CacheSequence>;
  cursor(): StreamCursor;
  close(): Promise<void>;
}

const noSequence = (reader: CacheReader) =>
  new DistillError('E_CACHE_INCOMPLETE', `the logit cache ${reader.uri} yielded no sequence for a whole epoch`, {
    subject: reader.uri,
  });

/** The reader's own order. Sequences are copied by the caller before the next is asked for (`reuse`). */
export function orderedSequences(reader: CacheReader, seed: number, start: StreamCursor): SequenceStream {
  let { epoch, position } = start;
  let it: AsyncIterator<CacheSequence> | undefined;
  return {
    async next() {
      for (let attempt = 0; attempt < 2; attempt++) {
        it ??= reader.sequences({ seed, epoch, position, reuse: true })[Symbol.asyncIterator]();
        const r = await it.next();
        if (!r.done) {
          position = r.value.position + r.value.rows.pos.length;
          return r.value;
        }
        epoch += 1;
        position = 0;
        it = undefined;
      }
      throw noSequence(reader);
    },
    cursor: () => ({ epoch, position }),
    async close() {
      await it?.return?.();
    },
  };
}

/**
 * The epoch's blocks: its shards in the reader's order (empty ones left out) taken greedily until a block
 * holds at least blockRows rows (the last block may hold fewer). Blocks start at shard boundaries, so a block
 * is read from its first row position on. This is mosaicml/streaming's py1b (streaming/base/shuffle/py1b.py,
 * get_shuffle_py1b: shards in a seeded order, then samples shuffled within fixed-size blocks) with blocks
 * aligned to shards and sized in rows.
 */
export function epochBlocks(
  reader: CacheReader,
  seed: number,
  epoch: number,
  blockRows: number,
): Array<{ start: number; rows: number }> {
  const blocks: Array<{ start: number; rows: number }> = [];
  let at = 0;
  let cur: { start: number; rows: number } | undefined;
  for (const index of reader.shardOrder(seed, epoch)) {
    const rows = reader.manifest.shards[index]?.rows ?? 0;
    if (rows === 0) continue;
    cur ??= { start: at, rows: 0 };
    cur.rows += rows;
    at += rows;
    if (cur.rows >= blockRows) {
      blocks.push(cur);
      cur = undefined;
    }
  }
  if (cur) blocks.push(cur);
  return blocks;
}

/** The visiting order of a block's n sequences: Fisher–Yates keyed by (seed, epoch, block). */
export function blockPermutation(n: number, seed: number, epoch: number, block: number): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const key = Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ Math.imul(block + 1, 0xc2b2ae35);
  const rnd = mulberry32(key >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = order[i] ?? 0;
    order[i] = order[j] ?? 0;
    order[j] = t;
  }
  return order;
}

/**
 * Block-shuffled sequences. The cursor is the block's first row position and the number of its sequences
 * already taken, so a resumed run reads the same block, permutes it the same way and skips what was taken.
 */
export function shuffledSequences(
  reader: CacheReader,
  seed: number,
  start: StreamCursor & { shuffle: { blockRows: number; taken: number } },
): SequenceStream {
  const blockRows = start.shuffle.blockRows;
  let epoch = start.epoch;
  let blocks = epochBlocks(reader, seed, epoch, blockRows);
  let b = blocks.findIndex((x) => x.start === start.position);
  if (b < 0 && start.position !== 0)
    throw new DistillError('E_CHECKPOINT', 'cannot resume: the cursor is not at a block of this cache', {
      expected: `a block start (${blocks.map((x) => x.start).join(', ')})`,
      found: String(start.position),
      subject: reader.uri,
    });
  b = Math.max(b, 0);
  let taken = start.shuffle.taken;
  let current: { seqs: CacheSequence[]; order: Uint32Array } | undefined;

  /** Reads block b whole: its sequences, copied (the reader may recycle nothing of ours), and their permutation. */
  const load = async (): Promise<void> => {
    const block = blocks[b];
    if (!block) throw new Error('internal invariant violated: loading a block past the epoch');
    const seqs: CacheSequence[] = [];
    let rows = 0;
    const it = reader.sequences({ seed, epoch, position: block.start })[Symbol.asyncIterator]();
    try {
      while (rows < block.rows) {
        const r = await it.next();
        if (r.done) break;
        seqs.push(r.value);
        rows += r.value.rows.pos.length;
      }
    } finally {
      await it.return?.();
    }
    current = { seqs, order: blockPermutation(seqs.length, seed, epoch, b) };
  };

  return {
    async next() {
      for (let guard = 0; guard <= blocks.length + 1; guard++) {
        if (!current) {
          if (b >= blocks.length) {
            epoch += 1;
            blocks = epochBlocks(reader, seed, epoch, blockRows);
            b = 0;
            taken = 0;
            if (!blocks.length) break;
          }
          await load();
        }
        const c = current;
        if (c && taken < c.seqs.length) {
          const s = c.seqs[c.order[taken] ?? 0];
          taken++;
          if (s) return s;
        }
        current = undefined;
        b++;
        taken = 0;
      }
      throw noSequence(reader);
    },
    cursor: () => ({ epoch, position: blocks[b]?.start ?? 0, shuffle: { blockRows, taken } }),
    async close() {},
  };
}
