// `distill student export`: a checkpoint folder → an ONNX model under the teacher contract
// (input_ids int64 [B, T] → logits float32 [B, T, V]).
import { Flags } from '@oclif/core';
import { exportOnnx, type OnnxExportResult } from '../../../src/student/export.js';
import { BaseCommand } from '../../base.js';

export default class StudentExport extends BaseCommand<typeof StudentExport> {
  static override description = 'Export a trained student to ONNX so it can serve as the next teacher';
  static override examples = ['<%= config.bin %> student export --checkpoint runs/kd/small --out small.onnx'];

  static override flags = {
    checkpoint: Flags.string({ description: 'checkpoint folder (config.json + model.safetensors)', required: true }),
    out: Flags.string({ description: 'ONNX file to write', required: true }),
  };

  async run(): Promise<OnnxExportResult> {
    const res = exportOnnx({ checkpoint: this.flags.checkpoint, out: this.flags.out });
    this.log(`wrote ${res.out} (${(res.bytes / 1e6).toFixed(2)} MB, ${res.parameters} parameters)`);
    return res;
  }
}
