// Object names inside a cache prefix (part of the spec): cache.json, shards/<index>/<attempt>.arrow,
// commits/<index>.json, manifest.json.
export const MANIFEST_KEY = 'manifest.json';
/** The run descriptor written when the first writer opens: inputs and shard count, so anyone can finalize. */
export const RUN_KEY = 'cache.json';

export function shardName(index: number): string {
  return String(index).padStart(6, '0');
}

export function commitKey(index: number): string {
  return `commits/${shardName(index)}.json`;
}

export function attemptKey(index: number, attempt: string): string {
  return `shards/${shardName(index)}/${attempt}.arrow`;
}

/** The shard index a commits/ or shards/ key belongs to, or -1. */
export function shardOfKey(key: string): number {
  const m = /^(?:commits|shards)\/(\d+)(?:\.json|\/)/.exec(key);
  return m ? Number(m[1]) : -1;
}

/** The shard index of a commit record's key (commits/<index>.json), or -1 for any other key. */
export function commitOfKey(key: string): number {
  const m = /^commits\/(\d+)\.json$/.exec(key);
  return m ? Number(m[1]) : -1;
}
