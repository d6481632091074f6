// The messages between ShardHasher (hasher.ts) and its hashing thread (hash-thread.ts).

/** Hands the thread a shared buffer it will hash in place (no reply). */
export interface SlotMessage {
  kind: 'slot';
  slot: number;
  buffer: SharedArrayBuffer;
}

/** SHA-256 of the first `length` bytes of a registered shared buffer. */
export interface HashMessage {
  kind: 'hash';
  id: number;
  slot: number;
  length: number;
}

/** A local file read into `into` (a whole shared buffer), then hashed. */
export interface ReadMessage {
  kind: 'read';
  id: number;
  file: string;
  into: SharedArrayBuffer;
}

export type HashRequest = SlotMessage | HashMessage | ReadMessage;

/** One reply per hash or read job. */
export interface HashReply {
  id: number;
  /** SHA-256 (hex) of the bytes; '' when there was nothing to hash. */
  sha: string;
  /** Why the job failed (the caller then hashes or reads on its own thread). */
  error?: string;
  /** Reads: the file's size, the bytes read (0 when it does not fit), whether it was missing. */
  size?: number;
  got?: number;
  missing?: boolean;
}
