// Shared shape vocabulary: N positions, T sequence length, V vocabulary size, K cached top-k entries.

/** A row-major matrix of float32 with its shape. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** Teacher top-k for N positions: ids and log-probs are N × k, row-major, sorted by probability. */
export interface TeacherTopK {
  ids: Uint32Array | Int32Array;
  logprobs: Float32Array;
  k: number;
}

/** Progress events emitted by long-running work; the CLI renders them (rate, ETA). */
export interface ProgressEvent {
  phase: string;
  done: number;
  total?: number;
  unit?: string;
  message?: string;
}

export type ProgressFn = (ev: ProgressEvent) => void;

export const IGNORE_INDEX = -100;
