// `distill data prepare`: text, JSONL, Parquet or chat files → an Arrow token dataset of fixed-length sequences
// (+ validation split; chat datasets carry a loss mask that scores only the assistant turns).
import { Flags } from '@oclif/core';
import { INPUT_FORMATS, prepareDataset, type PrepareResult } from '../../../src/data/index.js';
import { BaseCommand } from '../../base.js';
import { countFlag, fractionFlag } from '../../flags.js';

export default class DataPrepare extends BaseCommand<typeof DataPrepare> {
  static override description =
    'Tokenize text (.txt: one document; .jsonl: one per line; .parquet: one per row) or chat conversations into an Arrow token dataset of fixed-length sequences';
  static override examples = [
    '<%= config.bin %> data prepare --text fixtures/corpus/genesis.txt --tokenizer byte --seq-len 128 --out tokens.arrow --val-fraction 0.1',
    '<%= config.bin %> data prepare --text fixtures/corpus/proverbs.jsonl --tokenizer fixtures/teacher --seq-len 64 --out proverbs.arrow',
    '<%= config.bin %> data prepare --text train.parquet --column text --tokenizer ./model --seq-len 2048 --out tokens.arrow',
    '<%= config.bin %> data prepare --format chat --text chats.jsonl --tokenizer ./llama3 --seq-len 2048 --out chat.arrow',
  ];

  static override flags = {
    text: Flags.string({
      description: 'input file (.txt: one document; .jsonl/.ndjson: one per line; .parquet: one per row)',
      required: true,
      multiple: true,
    }),
    format: Flags.string({
      description:
        'text: documents are texts; chat: lists of {role, content} messages rendered by the chat template, only assistant turns scored',
      options: [...INPUT_FORMATS],
      default: 'text',
    }),
    column: Flags.string({
      description:
        'JSONL field or Parquet column holding each document [default: text, or messages with --format chat]',
      aliases: ['text-field'],
    }),
    'chat-template': Flags.string({ description: 'a Jinja chat template file to use instead of the tokenizer’s own' }),
    tokenizer: Flags.string({ description: '"byte", a tokenizer.json file, or a model folder', default: 'byte' }),
    'seq-len': countFlag({ description: 'tokens per sequence (T)', required: true, min: 2 }),
    out: Flags.string({ description: 'output .arrow file (training split)', required: true }),
    force: Flags.boolean({ description: 'replace existing output files', default: false, allowNo: true }),
    'val-fraction': fractionFlag({ description: 'fraction of sequences held out as <out>.val.arrow', default: 0 }),
  };

  async run(): Promise<PrepareResult> {
    const f = this.flags;
    const res = await prepareDataset({
      text: f.text,
      format: f.format as (typeof INPUT_FORMATS)[number],
      tokenizer: f.tokenizer,
      seqLen: f['seq-len'],
      out: f.out,
      valFraction: f['val-fraction'],
      force: f.force,
      ...(f.column !== undefined ? { column: f.column } : {}),
      ...(f['chat-template'] !== undefined ? { chatTemplate: f['chat-template'] } : {}),
      onProgress: this.progress(),
    });
    const scored = res.lossMask ? ` (${res.train.scoredPositions} scored positions)` : '';
    this.log(
      `${res.documents} documents, ${res.tokens} tokens (${res.tokenizer.name}, V=${res.tokenizer.vocabSize}) → ${res.train.numSequences} sequences of ${res.seqLen}${scored} in ${res.train.path}${res.val ? `, ${res.val.numSequences} in ${res.val.path}` : ''}; dataset sha256 ${res.train.sha256}`,
    );
    return res;
  }
}
