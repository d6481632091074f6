// Builds a small GPT-2-style byte-level BPE tokenizer.json (256 byte symbols, a few merges, <|endoftext|>)
// so the Hugging Face path is tested on a real tokenizer file without downloading one.
import { writeFileSync } from 'node:fs';

function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

export const MERGES = ['Ġ t', 'h e', 'Ġt he', 'a n', 'Ġ a', 'Ġa n', 'Ġan d', 'i n'];

export function writeBpeTokenizer(file: string): { vocabSize: number; eotId: number } {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, i) => (vocab[c] = i));
  let id = 256;
  for (const m of MERGES) vocab[m.replace(' ', '')] = id++;
  const eotId = id++;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: eotId,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: MERGES,
    },
  };
  writeFileSync(file, JSON.stringify(json));
  return { vocabSize: id, eotId };
}
