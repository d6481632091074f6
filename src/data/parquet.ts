// Parquet through parquet-wasm and Apache Arrow: one column of a file read (strings for text corpora,
// list<struct<role, content>> for chat conversations, as Hugging Face datasets ship them), and tables written.
import { createRequire } from 'node:module';
import { tableFromIPC, tableToIPC, type Table } from 'apache-arrow';
import { DistillError } from '../core/errors.js';

type ParquetWasm = typeof import('parquet-wasm/node');
let parquet: ParquetWasm | undefined;
function parquetWasm(): ParquetWasm {
  parquet ??= createRequire(import.meta.url)('parquet-wasm/node') as ParquetWasm;
  return parquet;
}

/**
 * The values of `column`, one per row, as plain JavaScript (strings, arrays, objects; null where the
 * row is null). Fails naming the file when it is not Parquet or has no such column.
 */
export function readParquetColumn(file: string, bytes: Uint8Array, column: string): unknown[] {
  const pq = parquetWasm();
  let names: string[];
  try {
    names = tableFromIPC(pq.readSchema(bytes).intoIPCStream()).schema.fields.map((f) => f.name);
  } catch (e) {
    throw new DistillError('E_DATA', `cannot read Parquet file ${file}`, {
      expected: 'a Parquet file',
      found: (e as Error).message,
      subject: file,
      cause: e,
    });
  }
  if (!names.includes(column))
    throw new DistillError('E_DATA', `Parquet file ${file} has no column "${column}"`, {
      expected: `a column "${column}"`,
      found: `columns ${names.join(', ') || 'none'}`,
      hint: 'name it with `column`',
      subject: file,
    });
  const table = tableFromIPC(pq.readParquet(bytes, { columns: [column] }).intoIPCStream());
  const col = table.getChild(column);
  if (!col) throw new Error(`internal invariant violated: column ${column} missing after projection`);
  const out: unknown[] = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) {
    const v: unknown = col.get(i);
    // Strings and nulls come as they are; nested values (Arrow Vectors, StructRows) through their toJSON.
    out[i] = v === null || typeof v !== 'object' ? v : JSON.parse(JSON.stringify(v));
  }
  return out;
}

/** An Arrow table as Parquet bytes (zstd). */
export function writeParquet(table: Table): Uint8Array {
  const pq = parquetWasm();
  // parquet-wasm takes ownership of the table and the properties (wasm-bindgen by-value): both are made per call.
  const props = new pq.WriterPropertiesBuilder().setCompression(pq.Compression.ZSTD).build();
  return pq.writeParquet(pq.Table.fromIPCStream(tableToIPC(table, 'stream')), props);
}
