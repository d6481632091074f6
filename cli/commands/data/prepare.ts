// `distill data prepare`: text/JSONL files → an Arrow token dataset of fixed-length sequences (+ validation split).
import { Flags } from '@oclif/core';
import { prepareDataset, type PrepareResult } from '../../../src/data/index.js';
import { BaseCommand } from '../../base.js';

export default class DataPrepare extends BaseCommand<typeof DataPrepare> {
  static override description =
    'Tokenize text files (one document each) or JSONL (one document per line) into an Arrow token dataset of fixed-length sequences';
  static override examples = [
    '<%= config.bin %> data prepare --text fixtures/corpus/genesis.txt --tokenizer byte --seq-len 128 --out tokens.arrow --val-fraction 0.1',
    '<%= config.bin %> data prepare --text fixtures/corpus/proverbs.jsonl --tokenizer fixtures/teacher --seq-len 64 --out proverbs.arrow',
  ];

  static override flags = {
    text: Flags.string({
      description: 'input file (.txt: one document; .jsonl: one document per line)',
      required: true,
      multiple: true,
    }),
    tokenizer: Flags.string({ description: '"byte", a tokenizer.json file, or a model folder', default: 'byte' }),
    'seq-len': Flags.integer({ description: 'tokens per sequence (T)', required: true }),
    out: Flags.string({ description: 'output .arrow file (training split)', required: true }),
    'val-fraction': Flags.string({ description: 'fraction of sequences held out as <out>.val.arrow', default: '0' }),
    'text-field': Flags.string({ description: 'JSONL field holding the text', default: 'text' }),
  };

  async run(): Promise<PrepareResult> {
    const f = this.flags;
    const res = await prepareDataset({
      text: f.text,
      tokenizer: f.tokenizer,
      seqLen: f['seq-len'],
      out: f.out,
      valFraction: Number(f['val-fraction']),
      textField: f['text-field'],
      onProgress: this.progress(),
    });
    this.log(
      `${res.documents} documents, ${res.tokens} tokens (${res.tokenizer.name}, V=${res.tokenizer.vocabSize}) → ${res.train.numSequences} sequences of ${res.seqLen} in ${res.train.path}${res.val ? `, ${res.val.numSequences} in ${res.val.path}` : ''}; dataset sha256 ${res.train.sha256}`,
    );
    return res;
  }
}
