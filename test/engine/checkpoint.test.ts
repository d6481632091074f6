// Safetensors round trips (F32/I32, metadata, alignment), checkpoint folders with optimizer state and
// their hash checks, corrupt files named in errors.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { paramLayout, parameterCount, parseModelConfig } from '../../src/core/model.js';
import { loadCheckpoint, readTrainerState, saveCheckpoint } from '../../src/engine/checkpoint.js';
import type { TrainerStateInput } from '../../src/engine/trainer-state.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/engine/safetensors.js';
import { randomParams } from '../student/helpers/llama-ref.js';
import { TINY_CONFIG } from './helpers.js';

const cfg = parseModelConfig({ ...TINY_CONFIG, contextLength: 4, ropeTheta: undefined });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-ckpt-'));

/** A trainer state as the trainer writes it, at `step`. */
const trainerState = (step: number): TrainerStateInput => ({
  step,
  totalSteps: 20,
  run: { steps: 20, batchSize: 2, gradAccum: 1, seed: 1, dataset: 'd'.repeat(64), cache: null },
  cursor: { seed: 1, epoch: 0, position: 2 * step },
  tokensSeen: 16 * step,
  lr: { lr: 1e-3, minLr: 1e-4, warmupSteps: 1 },
  optimizer: { clipNorm: 1, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8 },
  student: { name: 's', loss: 'forward-kl', support: 'renormalize', temperature: 1, schedule: null },
  schedule: null,
});

describe('safetensors', () => {
  it('round-trips tensors and metadata with an 8-aligned header', () => {
    const a = new Float32Array([1.5, -2, 3e-8]);
    const b = new Int32Array([7, -9]);
    const buf = encodeSafetensors(
      [
        ['a', { shape: [3], data: a }],
        ['b.c', { shape: [1, 2], data: b }],
      ],
      { k: 'v' },
    );
    expect(Number(buf.readBigUInt64LE(0)) % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
    expect(header.a).toEqual({ dtype: 'F32', shape: [3], data_offsets: [0, 12] });
    expect(header['b.c']).toEqual({ dtype: 'I32', shape: [1, 2], data_offsets: [12, 20] });
    const back = decodeSafetensors(buf);
    expect(Array.from(back.tensors.get('a')!.data as Float32Array)).toEqual(Array.from(a));
    expect(Array.from(back.tensors.get('b.c')!.data as Int32Array)).toEqual([7, -9]);
    expect(back.metadata).toEqual({ k: 'v' });
  });

  it('reads F16 and BF16 tensors written by other tools', () => {
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      bf: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
    });
    const hb = Buffer.from(header);
    const buf = Buffer.alloc(8 + hb.length + 6);
    buf.writeBigUInt64LE(BigInt(hb.length));
    hb.copy(buf, 8);
    buf.writeUInt16LE(0x3c00, 8 + hb.length); // 1.0
    buf.writeUInt16LE(0xc000, 10 + hb.length); // -2.0
    buf.writeUInt16LE(0x4049, 12 + hb.length); // bf16 ≈ 3.140625
    const t = decodeSafetensors(buf).tensors;
    expect(Array.from(t.get('h')!.data as Float32Array)).toEqual([1, -2]);
    expect((t.get('bf')!.data as Float32Array)[0]).toBeCloseTo(3.140625, 6);
  });

  it('rejects truncated files with the file named', () => {
    const buf = encodeSafetensors([['a', { shape: [4], data: new Float32Array(4) }]]);
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 3), 'x.safetensors')).toThrow(
      /x\.safetensors is not a valid safetensors file/,
    );
    expect(() => decodeSafetensors(buf.subarray(0, 5), 'y.safetensors')).toThrow(DistillError);
  });
});

describe('checkpoints', () => {
  it('saves and loads weights, optimizer moments and trainer state', () => {
    const dir = tmp();
    const params = randomParams(cfg, 4);
    const m = randomParams(cfg, 5),
      v = randomParams(cfg, 6);
    saveCheckpoint(dir, { config: cfg, params, optimizer: { m, v }, trainerState: trainerState(12) });
    const st = decodeSafetensors(readFileSync(path.join(dir, 'model.safetensors')));
    expect([...st.tensors.keys()]).toEqual(paramLayout(cfg).map((s) => s.name));
    expect(st.tensors.get('layers.1.wk')!.shape).toEqual([4, 8]);
    const back = loadCheckpoint(dir, { resume: true });
    expect(back.params).toEqual(params);
    expect(back.optimizer!.m).toEqual(m);
    expect(back.optimizer!.v).toEqual(v);
    expect(back.trainerState!.step).toBe(12);
    expect(back.trainerState).toMatchObject({ format: 'distillery-student/1', ...trainerState(12) });
    expect(readTrainerState(dir)).toEqual(back.trainerState);
    expect(back.params.length).toBe(parameterCount(cfg));
  });

  it('refuses to resume from a folder whose files come from different saves', () => {
    const dir = tmp();
    saveCheckpoint(dir, {
      config: cfg,
      params: randomParams(cfg, 1),
      optimizer: { m: new Float32Array(parameterCount(cfg)), v: new Float32Array(parameterCount(cfg)) },
      trainerState: trainerState(1),
    });
    const other = tmp();
    saveCheckpoint(other, { config: cfg, params: randomParams(cfg, 2) });
    writeFileSync(path.join(dir, 'model.safetensors'), readFileSync(path.join(other, 'model.safetensors')));
    expect(() => loadCheckpoint(dir, { resume: true })).toThrow(
      /model\.safetensors does not match trainer-state\.json/,
    );
    expect(loadCheckpoint(dir).params).toEqual(randomParams(cfg, 2)); // the weights alone still load
  });

  it('names the tensor when a checkpoint does not fit its config.json', () => {
    const dir = tmp();
    saveCheckpoint(dir, { config: cfg, params: randomParams(cfg, 1) });
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, ffnDim: 16 }));
    expect(() => loadCheckpoint(dir)).toThrow(/tensor layers\.0\.w1 does not match config\.json/);
  });

  it('refuses a trainer-state.json that is not JSON or lacks a field, naming the file', () => {
    const dir = tmp();
    saveCheckpoint(dir, {
      config: cfg,
      params: randomParams(cfg, 1),
      optimizer: { m: new Float32Array(parameterCount(cfg)), v: new Float32Array(parameterCount(cfg)) },
      trainerState: trainerState(3),
    });
    const file = path.join(dir, 'trainer-state.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, '{"step": 3,');
    expect(() => loadCheckpoint(dir, { resume: true })).toThrow(/trainer-state\.json is not valid JSON/);
    writeFileSync(file, JSON.stringify({ ...good, cursor: undefined }));
    const err = (() => {
      try {
        readTrainerState(dir);
      } catch (e) {
        return e as DistillError;
      }
      throw new Error('readTrainerState accepted a state without a cursor');
    })();
    expect(err.code).toBe('E_CHECKPOINT');
    expect(err.message).toMatch(/trainer-state\.json is malformed.*cursor/);
    expect(readTrainerState(tmp())).toBeUndefined();
  });
});
