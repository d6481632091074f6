// `distill generate --checkpoint <dir> (--prompt "…" | --data val.arrow [--rows N])`: sampled completions from a
// student checkpoint (KV-cache decoding on the native engine), printed as text, or with their ids under --json.
import { Flags } from '@oclif/core';
import { generateFromCheckpoint, type GenerateCheckpointResult } from '../../src/eval/generate.js';
import { BaseCommand } from '../base.js';
import { countFlag, intFlag, numberFlag } from '../flags.js';

export default class Generate extends BaseCommand<typeof Generate> {
  static override description =
    'Sample completions from a student checkpoint for text prompts or the first tokens of a dataset’s sequences';
  static override examples = [
    '<%= config.bin %> generate --checkpoint runs/kd/small --prompt "And the LORD said" --max-new-tokens 80',
    '<%= config.bin %> generate --checkpoint runs/kd/small --data tokens.val.arrow --rows 4 --temperature 0.8 --top-p 0.95 --json',
  ];
  static override fieldFlags = {
    prompts: 'prompt',
    maxNewTokens: 'max-new-tokens',
    promptTokens: 'prompt-tokens',
    temperature: 'temperature',
  };

  static override flags = {
    checkpoint: Flags.string({
      description: 'student checkpoint folder (config.json + model.safetensors)',
      required: true,
    }),
    prompt: Flags.string({
      description: 'text to complete (repeat for several; each is generated on its own)',
      multiple: true,
      exclusive: ['data'],
    }),
    data: Flags.string({ description: 'token dataset (Arrow): complete the first --prompt-tokens of its sequences' }),
    rows: countFlag({ description: 'dataset sequences to complete, in one batch (default 4)', dependsOn: ['data'] }),
    'prompt-tokens': countFlag({
      description: 'prompt length taken from each dataset sequence (default: half the sequence length)',
      dependsOn: ['data'],
    }),
    tokenizer: Flags.string({
      description:
        '"byte", a tokenizer.json or a model folder (default: the checkpoint’s tokenizer.json, else byte-level)',
    }),
    'max-new-tokens': countFlag({ description: 'tokens to sample per prompt', default: 64 }),
    temperature: numberFlag({ description: 'softmax temperature; 0 is greedy', default: 1, min: 0 }),
    'top-k': intFlag({ description: 'sample among the k most likely tokens (0: all)', min: 0 }),
    'top-p': numberFlag({ description: 'sample from the smallest set reaching this probability', gt: 0, max: 1 }),
    seed: intFlag({ description: 'sampler seed', default: 0, min: 0 }),
    stop: Flags.boolean({
      description: 'stop a sequence at the end-of-text token',
      default: true,
      allowNo: true,
    }),
    backend: Flags.string({
      description: 'engine backend: native or reference',
      options: ['native', 'reference'],
      default: 'native',
    }),
  };

  async run(): Promise<GenerateCheckpointResult> {
    const f = this.flags;
    const res = await generateFromCheckpoint({
      checkpoint: f.checkpoint,
      ...(f.prompt?.length ? { prompts: f.prompt } : {}),
      ...(f.data ? { data: f.data } : {}),
      ...(f.rows !== undefined ? { rows: f.rows } : {}),
      ...(f['prompt-tokens'] !== undefined ? { promptTokens: f['prompt-tokens'] } : {}),
      ...(f.tokenizer ? { tokenizer: f.tokenizer } : {}),
      maxNewTokens: f['max-new-tokens'],
      sampling: {
        temperature: f.temperature,
        ...(f['top-k'] !== undefined ? { topK: f['top-k'] } : {}),
        ...(f['top-p'] !== undefined ? { topP: f['top-p'] } : {}),
      },
      seed: f.seed,
      stopAtEot: f.stop,
      backend: f.backend as 'native' | 'reference',
      progress: this.progress(),
    });
    res.samples.forEach((s, i) => {
      this.log(`--- sample ${i + 1} (${s.ids.length} tokens${s.stopped ? ', stopped at end-of-text' : ''})`);
      this.log(`prompt: ${s.prompt}`);
      this.log(`completion: ${s.completion}`);
    });
    this.log(
      `${res.generatedTokens} tokens in ${res.seconds.toFixed(2)} s (${res.tokensPerSecond.toFixed(0)} tokens/s), tokenizer ${res.tokenizer}, seed ${res.seed}`,
    );
    return res;
  }
}
