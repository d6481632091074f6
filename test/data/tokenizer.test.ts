// Tokenizers: byte-level ids and round trips, a real byte-level BPE tokenizer.json, model-folder resolution, bad specs.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BYTE_TOKENIZER_DESCRIPTOR, loadTokenizer } from '../../src/data/index.js';
import { writeBpeTokenizer } from './helpers/hf-tokenizer.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-tok-'));

describe('byte tokenizer', () => {
  it('maps bytes to ids 0–255, end-of-text to 256, and round-trips UTF-8', async () => {
    const t = await loadTokenizer('byte');
    expect(t.vocabSize).toBe(257);
    expect(t.eotId).toBe(256);
    expect(t.encode('Ab')).toEqual([65, 98]);
    const s = 'In the beginning — “God” ✓';
    expect(t.decode(t.encode(s))).toBe(s);
    expect(t.encode(s).length).toBe(Buffer.byteLength(s));
    expect(t.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a model folder whose tokenizer.json names the byte tokenizer resolves to the same tokenizer and hash', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(BYTE_TOKENIZER_DESCRIPTOR));
    writeFileSync(path.join(dir, 'model.onnx'), 'x');
    const a = await loadTokenizer('byte');
    for (const spec of [dir, path.join(dir, 'model.onnx'), path.join(dir, 'tokenizer.json')]) {
      const b = await loadTokenizer(spec);
      expect(b.sha256).toBe(a.sha256);
      expect(b.name).toBe('byte');
    }
  });
});

describe('Hugging Face tokenizer.json', () => {
  it('loads a byte-level BPE file: merges apply, decode inverts encode, V and end-of-text come from the file', async () => {
    const dir = tmp();
    const file = path.join(dir, 'tokenizer.json');
    const { vocabSize, eotId } = writeBpeTokenizer(file);
    const t = await loadTokenizer(file);
    expect(t.vocabSize).toBe(vocabSize);
    expect(t.eotId).toBe(eotId);
    const s = 'In the beginning and the end';
    const ids = t.encode(s);
    expect(ids.length).toBeLessThan(Buffer.byteLength(s));
    expect(ids.every((i) => i >= 0 && i < vocabSize)).toBe(true);
    expect(t.decode(ids)).toBe(s);
    expect((await loadTokenizer(dir)).sha256).toBe(t.sha256);
  });

  it('rejects missing files, folders without a tokenizer and non-tokenizer JSON with E_TOKENIZER', async () => {
    const dir = tmp();
    await expect(loadTokenizer(path.join(dir, 'nope.json'))).rejects.toMatchObject({ code: 'E_TOKENIZER' });
    mkdirSync(path.join(dir, 'model'));
    await expect(loadTokenizer(path.join(dir, 'model'))).rejects.toThrow(/has no tokenizer.json/);
    writeFileSync(path.join(dir, 'x.json'), '{"hello": 1}');
    await expect(loadTokenizer(path.join(dir, 'x.json'))).rejects.toThrow(/not a Hugging Face tokenizer.json/);
  });
});
