// The cache fingerprint: SHA-256 over canonical JSON (sorted keys) of every input that changes the cache's content
// (names and timestamps are excluded so renaming a teacher file does not invalidate it); and those inputs' checks.
import { DistillError } from '../../core/errors.js';
import type { CacheInputs, CacheLayout } from '../api.js';
import { formatVersionFor } from '../format/schema.js';
import { sha256Hex } from '../format/sha256.js';

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v))
      throw new DistillError('E_CONFIG', `cannot fingerprint the non-finite number ${v}`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((key) => o[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(o[key])}`)
    .join(',')}}`;
}

/** What the fingerprint covers, as a plain object (documented in docs/cache-format.md). */
export function fingerprintBody(inputs: CacheInputs): Record<string, unknown> {
  return {
    formatVersion: formatVersionFor(inputs.encodings),
    teacherSha256: inputs.teacher.sha256,
    tokenizerSha256: inputs.tokenizer.sha256,
    dataset: {
      sha256: inputs.dataset.sha256,
      sequences: inputs.dataset.sequences,
      seqLen: inputs.dataset.seqLen,
      // Absent (and so left out of the canonical JSON) for datasets without a loss mask: their fingerprints stay.
      scoredPositions: inputs.dataset.scoredPositions,
    },
    vocabSize: inputs.vocabSize,
    k: inputs.k,
    temperature: inputs.temperature,
    encodings: { ids: inputs.encodings.ids, logp: inputs.encodings.logp, compression: inputs.encodings.compression },
    samples: inputs.samples ?? 0,
  };
}

export function computeFingerprint(inputs: CacheInputs): string {
  return sha256Hex(canonicalJson(fingerprintBody(inputs)));
}

const SHA = /^[0-9a-f]{64}$/;

/** A refused cache input, naming it, what it must be and what it is. */
function badInput(what: string, expected: string, found: unknown): DistillError {
  return new DistillError('E_CONFIG', `invalid cache input ${what}`, {
    expected,
    found: JSON.stringify(found),
    subject: what,
  });
}

/** Validates writer inputs once, at the door; returns the layout they give the shards. */
export function validateInputs(inputs: CacheInputs): CacheLayout {
  if (!inputs || typeof inputs !== 'object') throw badInput('inputs', 'an object', inputs);
  checkHashes(inputs);
  checkSizes(inputs);
  const e = checkEncodings(inputs);
  const samples = inputs.samples ?? 0;
  if (!Number.isInteger(samples) || samples < 0) throw badInput('samples', 'an integer ≥ 0', samples);
  return {
    formatVersion: formatVersionFor(e),
    vocabSize: inputs.vocabSize,
    k: inputs.k,
    seqLen: inputs.dataset.seqLen,
    samples,
    encodings: { ...e },
    ...(inputs.dataset.scoredPositions !== undefined ? { masked: true } : {}),
  };
}

function checkHashes(inputs: CacheInputs): void {
  for (const [what, v] of [
    ['teacher.sha256', inputs.teacher?.sha256],
    ['tokenizer.sha256', inputs.tokenizer?.sha256],
    ['dataset.sha256', inputs.dataset?.sha256],
  ] as const) {
    if (typeof v !== 'string' || !SHA.test(v)) throw badInput(what, 'a lowercase hex SHA-256 (64 characters)', v);
  }
}

function checkSizes(inputs: CacheInputs): void {
  const posInt = (what: string, v: unknown, max = 2 ** 32 - 1) => {
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max)
      throw badInput(what, `an integer in [1, ${max}]`, v);
  };
  posInt('vocabSize', inputs.vocabSize);
  posInt('k', inputs.k, 65536);
  posInt('dataset.seqLen', inputs.dataset.seqLen);
  if (!Number.isInteger(inputs.dataset.sequences) || inputs.dataset.sequences < 0)
    throw badInput('dataset.sequences', 'an integer ≥ 0', inputs.dataset.sequences);
  const scored = inputs.dataset.scoredPositions;
  if (
    scored !== undefined &&
    (!Number.isInteger(scored) || scored < 0 || scored > inputs.dataset.sequences * inputs.dataset.seqLen)
  )
    throw badInput('dataset.scoredPositions', `an integer in [0, sequences × seqLen]`, scored);
  if (!(inputs.temperature > 0) || !Number.isFinite(inputs.temperature))
    throw badInput('temperature', 'a finite number > 0', inputs.temperature);
}

function checkEncodings(inputs: CacheInputs): CacheInputs['encodings'] {
  const e = inputs.encodings ?? ({} as CacheInputs['encodings']);
  if (e.ids !== 'uint16' && e.ids !== 'uint32' && e.ids !== 'packed')
    throw badInput('encodings.ids', 'uint16, uint32 or packed', e.ids);
  if (e.ids === 'uint16' && inputs.vocabSize > 65536)
    throw badInput(
      'encodings.ids',
      'uint32 or packed for a vocabulary larger than 65536',
      `uint16 with vocabSize ${inputs.vocabSize}`,
    );
  if (e.logp !== 'float32' && e.logp !== 'float16' && e.logp !== 'uint8' && e.logp !== 'packed')
    throw badInput('encodings.logp', 'float32, float16, uint8 or packed', e.logp);
  if ((e.ids === 'packed') !== (e.logp === 'packed'))
    throw badInput('encodings', 'ids and logp both packed, or neither (packed ids and levels share one bitstream)', {
      ids: e.ids,
      logp: e.logp,
    });
  if (e.ids === 'packed' && inputs.k > inputs.vocabSize)
    throw badInput('k', `at most the vocabulary size ${inputs.vocabSize} with packed ids (ids are distinct)`, inputs.k);
  if (e.compression !== 'none' && e.compression !== 'zstd' && e.compression !== 'lz4')
    throw badInput('encodings.compression', 'none, zstd or lz4', e.compression);
  return e;
}

/** The default ids encoding for a vocabulary. */
export function idsEncodingFor(vocabSize: number): 'uint16' | 'uint32' {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}
