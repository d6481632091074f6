// The hashing thread behind ShardHasher (hasher.ts): SHA-256 of bytes in shared buffers, and local shard files
// read into a shared buffer and hashed there. Jobs are answered one at a time, in the order they came.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { HashMessage, HashReply, HashRequest, ReadMessage } from './hash-messages.js';

const slots: Uint8Array[] = [];

function message(err: unknown): string {
  return String((err as Error)?.message ?? err);
}

function hashSlot(m: HashMessage): HashReply {
  const slot = slots[m.slot];
  if (!slot) return { id: m.id, sha: '', error: `no shared buffer in slot ${m.slot}` };
  try {
    return { id: m.id, sha: createHash('sha256').update(slot.subarray(0, m.length)).digest('hex') };
  } catch (err) {
    return { id: m.id, sha: '', error: message(err) };
  }
}

/**
 * Reads a local file into the shared buffer, then hashes it: { size } of the file, { got } bytes read (0 when it
 * does not fit), { sha } of those bytes; { missing } when it does not exist, { error } for any other failure.
 */
function readAndHash(m: ReadMessage): HashReply {
  let fd: number | undefined;
  try {
    fd = fs.openSync(m.file, 'r');
    const size = fs.fstatSync(fd).size;
    const view = new Uint8Array(m.into);
    let got = 0;
    if (size <= view.length) {
      while (got < size) {
        const n = fs.readSync(fd, view, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
    }
    const sha = got === size ? createHash('sha256').update(view.subarray(0, got)).digest('hex') : '';
    return { id: m.id, size, got, sha };
  } catch (err) {
    return { id: m.id, sha: '', missing: (err as NodeJS.ErrnoException)?.code === 'ENOENT', error: message(err) };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const port = parentPort;
if (!port) throw new Error('hash-thread runs as a worker thread, started by ShardHasher');
port.on('message', (m: HashRequest) => {
  if (m.kind === 'slot') slots[m.slot] = new Uint8Array(m.buffer);
  else port.postMessage(m.kind === 'read' ? readAndHash(m) : hashSlot(m));
});
