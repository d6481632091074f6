// The teacher backend contract: describe() (V, longest sequence, identity for the fingerprint) and
// score(sequences [n, T]) → per position top-k ids and log-probs over the full vocabulary [n·T·k], tail
// mass log(1 − Σ exp logp) [n·T], samples [n·T·S] where the backend draws them, and, when opened with `targets`,
// the log-prob of each position's actual next token [n·T] (on-policy token-rkl). defineBackend checks a
// definition at the door, as defineSchedule and defineLoss do.
import type { z } from 'zod';
import type { Registered } from '../../core/registry.js';
import type { TokenDataset } from '../../data/index.js';
import type { Device } from './onnx/session.js';

/** What goes into the cache fingerprint and manifest for the teacher: a display name and a SHA-256. */
export interface TeacherIdentity {
  name: string;
  sha256: string;
}

export interface BackendDescription {
  /** Registered backend id. */
  kind: string;
  /** How messages name the teacher ("model.onnx", "served model meta-llama/…"). */
  label: string;
  /**
   * V: the log-probabilities are normalized over this many ids. null when the backend cannot state it (a
   * served model): the dataset's vocabulary is taken, and every id a reply holds is checked against it.
   */
  vocabSize: number | null;
  /** The longest sequence it scores; null when it states none. */
  maxSeqLen: number | null;
  identity: TeacherIdentity;
  /** Temperature the log-probabilities are taken at (served engines return raw ones: 1). */
  temperature: number;
  /** Draws per position it returns (0 = none). */
  samples: number;
  /**
   * Model calls it serves at once (a session: 1; a fleet: its requests in flight). The runner keeps twice
   * that many batches queued, so the next ones are ready when calls finish.
   */
  inFlight: number;
}

export interface ScoreRequest {
  /** Token ids, nSeq × seqLen row-major. */
  tokens: Uint32Array;
  nSeq: number;
  seqLen: number;
  /** Dataset index of the first sequence (for messages). */
  firstSeq: number;
  /** Sequences per model call (a session run, a request). */
  batchSize: number;
}

/** The distributions of `nSeq` consecutive sequences (one model call's worth); several per request in order. */
export interface ScoredPart {
  nSeq: number;
  /** nSeq·T × k ids, each row by descending probability. */
  ids: Int32Array;
  logp: Float32Array;
  /** nSeq·T: log of the mass outside the top k (−inf when none). */
  tail: Float32Array;
  /** nSeq·T × S draws, when the backend draws samples. */
  samples?: Int32Array;
  /**
   * nSeq·T, when the backend was opened with `targets`: row s·T + t holds log p(token t + 1 | tokens ≤ t) of
   * sequence s — the log-probability of the token that actually follows, over the full vocabulary at the run's
   * temperature, whether or not it is in the top k. NaN at each sequence's last position (no next token).
   */
  target?: Float32Array;
  /** V as the model reported it for this call (checked against describe().vocabSize). */
  vocab: number;
}

export interface TeacherBackend {
  describe(): BackendDescription;
  /**
   * Checks that the dataset can be scored (tokenizer, sequence length, a first call) against vocabulary V
   * (describe().vocabSize, or the dataset's when that is null); throws a DistillError otherwise.
   */
  checkDataset(dataset: TokenDataset, V: number): Promise<void>;
  /**
   * The tokenizer check without a dataset, for live scoring of sequences made elsewhere (on-policy samples): the
   * tokenizer the sequences come from must be the teacher's, where the backend knows its own. The vocabulary is
   * describe().vocabSize. Backends that cannot tell (served ones check against the dataset) leave it out.
   */
  checkTokenizer?(tokenizer: { name: string; sha256: string }, subject?: string): Promise<void>;
  /** Brings up whatever runs the model, warmed for batches of this shape, before the first score(). */
  start(shape: { B: number; T: number }): Promise<void>;
  score(req: ScoreRequest): Promise<ScoredPart[]>;
  close(): Promise<void>;
}

/** The run's settings every backend receives; each reads what applies to it and refuses what it cannot honour. */
export interface BackendOptions {
  k: number;
  temperature: number;
  samples: number;
  seed?: number;
  /** The local device this worker runs on (ONNX sessions). */
  device: Device;
  /** Intra-op threads of a local session. */
  threads?: number;
  /**
   * Also return, per position, the log-probability of the sequence's next token (ScoredPart.target), exactly:
   * every built-in backend reads it from the full distribution. The cache path leaves it off.
   */
  targets?: boolean;
}

/** A registered backend: its id, its own parameters (validated by `params` at the door) and how it opens. */
export interface BackendDefinition<P = unknown> extends Registered<P> {
  id: string;
  description: string;
  params: z.ZodType<P>;
  /** True when it runs on the local devices (one worker per --device); false for remote servers. */
  usesDevices: boolean;
  /** Validates the teacher and opens it; nothing heavy starts before start(). */
  open(params: P, options: BackendOptions): Promise<TeacherBackend>;
}

export function defineBackend<P>(def: BackendDefinition<P>): BackendDefinition<P> {
  if (typeof def.open !== 'function') throw new TypeError(`backend "${def.id}": open must be a function`);
  return def;
}
