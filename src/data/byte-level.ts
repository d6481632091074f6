// The built-in byte tokenizer's ids (0–255 = bytes, 256 = end-of-text) and the same tokenizer written as
// Hugging Face tokenizer files: a byte-level BPE with no merges whose vocabulary maps each byte's GPT-2
// symbol to the byte's own value.

export const BYTE_EOT_ID = 256;
export const BYTE_VOCAB_SIZE = 257;

/** The end-of-text token's text in the Hugging Face files (GPT-2's name for it). */
export const BYTE_EOT_TOKEN = '<|endoftext|>';

/**
 * GPT-2's reversible byte → printable-character map, as `bytes_to_unicode` in the `tokenizers` library
 * (tokenizers/src/pre_tokenizers/byte_level.rs): printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100 onwards in byte order. The ByteLevel pre-tokenizer and decoder use exactly this map.
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  return out;
}

const eotAddedToken = {
  id: BYTE_EOT_ID,
  content: BYTE_EOT_TOKEN,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
};

/**
 * tokenizer.json: ByteLevel pre-tokenizer without the split regex and without a prefix space, so a text
 * becomes its UTF-8 bytes' symbols unchanged; BPE with the 256 symbols (id = byte) and no merges, so every
 * byte is one token; `<|endoftext|>` an added special token with id 256; the ByteLevel decoder maps symbols
 * back to bytes. Encoding any text therefore gives the byte tokenizer's ids.
 */
export function byteTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, b) => (vocab[c] = b));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [eotAddedToken],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

/** tokenizer_config.json for the byte tokenizer: a fast tokenizer whose end-of-text is the eos token. */
export function byteTokenizerConfig(modelMaxLength: number): Record<string, unknown> {
  const { id, ...token } = eotAddedToken;
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: { [String(id)]: token },
    bos_token: null,
    eos_token: BYTE_EOT_TOKEN,
    pad_token: null,
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
  };
}
