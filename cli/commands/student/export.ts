// `distill student export`: a checkpoint folder → an ONNX model under the teacher contract
// (input_ids int64 [B, T] → logits float32 [B, T, V]), or (--format hf) a Hugging Face LlamaForCausalLM folder.
import { Flags } from '@oclif/core';
import { exportHuggingFace, HF_DTYPES, type HfDType, type HfExportResult } from '../../../src/engine/hf/index.js';
import { exportOnnx, type OnnxExportResult } from '../../../src/student/export.js';
import { BaseCommand, DistillError } from '../../base.js';

export default class StudentExport extends BaseCommand<typeof StudentExport> {
  static override description =
    'Export a trained student to ONNX (so it can serve as the next teacher) or to a Hugging Face folder (transformers, vLLM, llama.cpp)';
  static override examples = [
    '<%= config.bin %> student export --checkpoint runs/kd/small --out small.onnx',
    '<%= config.bin %> student export --checkpoint runs/kd/small --format hf --out small-hf --dtype bf16',
  ];

  static override flags = {
    checkpoint: Flags.string({ description: 'checkpoint folder (config.json + model.safetensors)', required: true }),
    out: Flags.string({ description: 'ONNX file to write, or the folder for --format hf', required: true }),
    force: Flags.boolean({ description: 'replace an existing --out', default: false, allowNo: true }),
    format: Flags.string({
      description: 'onnx: a model under the teacher contract; hf: a Hugging Face LlamaForCausalLM folder',
      options: ['onnx', 'hf'],
      default: 'onnx',
    }),
    dtype: Flags.string({ description: 'weight dtype of a Hugging Face export', options: [...HF_DTYPES] }),
    tokenizer: Flags.string({
      description:
        'the tokenizer the student was trained with ("byte", tokenizer.json or model folder) for a Hugging Face export [default: byte when V = 257]',
    }),
  };

  async run(): Promise<OnnxExportResult | HfExportResult> {
    const f = this.flags;
    if (f.format === 'onnx') {
      if (f.dtype !== undefined || f.tokenizer !== undefined)
        throw new DistillError('E_USAGE', '--dtype and --tokenizer apply to --format hf only', {
          hint: 'an ONNX export is float32 and carries no tokenizer files',
        });
      const res = exportOnnx({ checkpoint: f.checkpoint, out: f.out, force: f.force });
      this.log(`wrote ${res.out} (${(res.bytes / 1e6).toFixed(2)} MB, ${res.parameters} parameters)`);
      return res;
    }
    const res = await exportHuggingFace({
      checkpoint: f.checkpoint,
      out: f.out,
      ...(f.dtype !== undefined ? { dtype: f.dtype as HfDType } : {}),
      ...(f.tokenizer !== undefined ? { tokenizer: f.tokenizer } : {}),
      force: f.force,
    });
    this.log(
      `wrote ${res.out}: ${res.files.join(', ')} (${res.parameters} parameters, ${res.dtype}, ${(res.bytes / 1e6).toFixed(2)} MB of weights, tokenizer ${res.tokenizer})`,
    );
    return res;
  }
}
