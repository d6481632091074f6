// How many bytes the engine holds for one batch of B sequences × T positions, counted from the buffers the
// native engine sizes to the batch (cuda/engine/cpu/model.cpp, dn_model_forward and dn_model_backward:
// res … rf forward, dres … dau backward, all float32), so that a batch too large for the machine is refused
// before it is allocated; MoE layers count the buffers of cuda/engine/cpu/moe.cpp (moeLayerFloats).
// checkMemory refuses work whose estimate exceeds the memory the machine has free, saying what it needs.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { DistillError } from '../core/errors.js';
import { headDim, type ModelConfig } from '../core/model.js';
import { isMoeLayer } from '../core/moe.js';

/**
 * 4-byte values one MoE layer keeps (cuda/engine/cpu/moe.cpp, struct dn_moe): for N tokens and S = N·k routing slots,
 * the input copy, logits and affinities [N×E], per slot its weight, expert and three 64-bit row indices, per token its
 * entropy (double); the gathered inputs, [a | u], products and outputs of the experts [S × (2d + 3F)]; the shared
 * SwiGLU [N × 3·SF]; and the same again as backward scratch (each MoE layer keeps its own).
 */
export function moeLayerFloats(c: ModelConfig, N: number): number {
  const moe = c.moe;
  if (!moe) return 0;
  const d = c.dModel,
    E = moe.experts,
    F = moe.expertFfnDim,
    SF = moe.sharedExperts * F,
    S = N * moe.activeExperts;
  const forward = N * d + 2 * N * E + S * (1 + 1 + 3 * 2) + 2 * N + S * (2 * d + 3 * F) + 3 * N * SF;
  const backward = S * (2 * d + 3 * F) + 3 * N * SF + N * E + S;
  return forward + backward;
}

/** float32 values the engine keeps for a forward + backward of B × T (activations and their gradients). */
export function activationFloats(c: ModelConfig, B: number, T: number): number {
  const N = B * T;
  const d = c.dModel;
  const L = c.nLayers;
  const h = c.nHeads;
  const hd = headDim(c);
  const qw = h * hd;
  const qkvw = (h + 2 * c.nKvHeads) * hd;
  const f = c.ffnDim;
  let dense = 0;
  let moe = 0;
  for (let l = 0; l < L; l++) {
    if (c.moe && isMoeLayer(l, c.moe)) moe += moeLayerFloats(c, N);
    else dense += 1;
  }
  const probs = B * h * T * T;
  const forward =
    (L + 1) * N * d + // res
    L * N * d + // xmid
    L * N + // r1
    L * N * d + // h1
    L * N * qkvw + // qkv
    L * probs + // probs
    L * N * qw + // att
    L * N + // r2
    L * N * d + // h2
    dense * N * 3 * f + // au (2f) and m (f)
    moe + // MoE layers, forward and backward
    N; // rf
  const backward = 3 * N * d + N * qw + N * qkvw + probs + 3 * N * Math.max(f, 0);
  return forward + backward;
}

/** Bytes for one batch through the engine: activations, the hidden states and their gradient handed to the LM head. */
export function batchBytes(c: ModelConfig, B: number, T: number): number {
  return 4 * (activationFloats(c, B, T) + 2 * B * T * c.dModel);
}

/** A number read from a file such as /proc/meminfo or a cgroup control file; undefined when absent. */
function readNumber(file: string, pattern: RegExp): number | undefined {
  try {
    const m = pattern.exec(readFileSync(file, 'utf8'));
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Memory the machine can give this process now: Linux's MemAvailable (free plus reclaimable cache), capped by
 * the cgroup v2 limit of a container (memory.max − memory.current); os.freemem() elsewhere.
 */
export function availableMemory(): number {
  const avail = readNumber('/proc/meminfo', /^MemAvailable:\s+(\d+) kB/m);
  let free = avail !== undefined ? avail * 1024 : os.freemem();
  const max = readNumber('/sys/fs/cgroup/memory.max', /^(\d+)/);
  const used = readNumber('/sys/fs/cgroup/memory.current', /^(\d+)/);
  if (max !== undefined && used !== undefined) free = Math.min(free, Math.max(0, max - used));
  return free;
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(bytes < 1e9 ? 3 : 1)} GB`;

/**
 * Refuses (E_MEMORY) when the parts of an estimate add up to more than `available` bytes: the message gives
 * the total needed, its largest parts, what is free, and `hint` (how to need less).
 */
export function checkMemory(what: string, parts: Record<string, number>, available: number, hint: string): void {
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  if (total <= available) return;
  const largest = Object.entries(parts)
    .filter(([, b]) => b > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, b]) => `${name} ${gb(b)}`)
    .join(', ');
  throw new DistillError(
    'E_MEMORY',
    `${what} needs about ${gb(total)} of memory, more than the ${gb(available)} free`,
    {
      expected: `at most ${gb(available)}`,
      found: `${gb(total)} (${largest})`,
      hint,
    },
  );
}
