// Public surface of src/data: tokenizers, input readers (text, JSONL, Parquet, chat), token datasets, their
// sequences as model input, the check that a logit cache was made from a dataset, and a run's metrics log.
export { loadTokenizer, byteTokenizer, BYTE_EOT_ID, BYTE_VOCAB_SIZE, BYTE_TOKENIZER_DESCRIPTOR } from './tokenizer.js';
export type { Tokenizer, ChatTemplateSource } from './tokenizer.js';
export {
  openTokenDataset,
  writeTokenDataset,
  tokenDatasetHash,
  TOKEN_DATASET_FORMAT,
  TOKEN_DATASET_VERSION,
  TOKEN_DATASET_MASKED_VERSION,
} from './dataset.js';
export type { TokenDataset, TokenDatasetHeader } from './dataset.js';
export { chatEncoder, toMessages, TARGET_ROLES } from './chat.js';
export type { ChatMessage, EncodedChat } from './chat.js';
export { INPUT_FORMATS } from './sources.js';
export type { InputFormat } from './sources.js';
export { prepareDataset, valPathFor } from './prepare.js';
export type { PrepareOptions, PrepareResult, PreparedSplit } from './prepare.js';
export { assembleTokens } from './sequences.js';
export type { TokenDatasetLike } from './sequences.js';
export { checkCacheMatchesDataset } from './cache-match.js';
export { MetricsRowSchema, readMetricsLog, writeMetricsLog, appendMetricsRow } from './metrics-log.js';
export type { MetricsRow, MetricsLog } from './metrics-log.js';
export { exportAxolotl, AXOLOTL_PAD_LOGPROB } from './axolotl.js';
export type { AxolotlExportOptions, AxolotlExportResult } from './axolotl.js';
