// Total and active parameters of an ONNX teacher exported by Distillery, from the model config its export
// records in the `distillery.config` metadata entry; teachers exported elsewhere have none (undefined).
import { readFileSync } from 'node:fs';
import { activeParameterCount, parameterCount, parseModelConfig } from '../core/model.js';
import { decodeModel } from '../onnx/index.js';

export function teacherParameters(file: string): { params: number; activeParams: number } | undefined {
  const meta = decodeModel(new Uint8Array(readFileSync(file)), file).metadataProps ?? [];
  const raw = meta.find((m) => m.key === 'distillery.config')?.value;
  if (!raw) return undefined;
  const c = parseModelConfig(JSON.parse(raw), `${file} (distillery.config)`);
  return { params: parameterCount(c), activeParams: activeParameterCount(c) };
}
