// Input files → documents: .txt (one document), .jsonl/.ndjson (one per line) and .parquet (one per row),
// each a text or, with the chat format, a list of messages; every document remembers its file and line.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { DistillError } from '../core/errors.js';
import { toMessages, type ChatMessage } from './chat.js';
import { readParquetColumn } from './parquet.js';

export type InputFormat = 'text' | 'chat';
export const INPUT_FORMATS: readonly InputFormat[] = ['text', 'chat'];

export type Document = { where: string } & ({ text: string } | { messages: ChatMessage[] });

const isJsonl = (file: string) => /\.(jsonl|ndjson)$/i.test(file);
const isParquet = (file: string) => /\.parquet$/i.test(file);

/** The default column (JSONL field, Parquet column) of a format. */
export const defaultColumn = (format: InputFormat): string => (format === 'chat' ? 'messages' : 'text');

/** One record's value → a document, or null for an empty text (skipped like a blank line). */
function toDocument(
  value: unknown,
  format: InputFormat,
  column: string,
  where: string,
  found: string,
): Document | null {
  if (format === 'chat') {
    if (value === undefined || value === null)
      throw new DistillError('E_DATA', `${where} has no messages field "${column}"`, {
        expected: `a list of messages in "${column}"`,
        found,
        hint: 'name it with `column`',
        subject: where,
      });
    return { where, messages: toMessages(value, where) };
  }
  if (typeof value !== 'string')
    throw new DistillError('E_DATA', `${where} has no text field "${column}"`, {
      expected: `a string field "${column}"`,
      found,
      hint: 'name it with `column`',
      subject: where,
    });
  return value.length ? { where, text: value } : null;
}

function jsonlDocuments(file: string, raw: string, format: InputFormat, column: string): Document[] {
  const docs: Document[] = [];
  const lines = raw.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (!line) continue;
    const where = `line ${i + 1} of ${file}`;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new DistillError('E_DATA', `invalid JSON on ${where}`, {
        found: (e as Error).message,
        subject: `${file}:${i + 1}`,
      });
    }
    const obj = rec && typeof rec === 'object' && !Array.isArray(rec) ? (rec as Record<string, unknown>) : undefined;
    const found = obj ? `fields ${Object.keys(obj).join(', ')}` : typeof rec;
    const doc = toDocument(obj?.[column], format, column, where, found);
    if (doc) docs.push(doc);
  }
  return docs;
}

/** Reads every document of one input file; `column` is the JSONL field or Parquet column. */
export function readDocuments(file: string, format: InputFormat, column: string): Document[] {
  if (!existsSync(file) || !statSync(file).isFile())
    throw new DistillError('E_NOT_FOUND', `text file not found: ${file}`, { subject: file });
  if (isParquet(file)) {
    const values = readParquetColumn(file, readFileSync(file), column);
    const docs: Document[] = [];
    values.forEach((v, i) => {
      const doc = toDocument(v, format, column, `row ${i + 1} of ${file}`, v === null ? 'null' : typeof v);
      if (doc) docs.push(doc);
    });
    return docs;
  }
  const raw = readFileSync(file, 'utf8');
  if (isJsonl(file)) return jsonlDocuments(file, raw, format, column);
  if (format === 'chat')
    throw new DistillError('E_USAGE', `chat input must be JSONL or Parquet: ${file}`, {
      expected: 'a .jsonl, .ndjson or .parquet file with a list of messages per record',
      found: 'a plain text file',
      subject: file,
    });
  return raw.length ? [{ where: file, text: raw }] : [];
}
