// Chat conversations → token ids and per-token target flags: the tokenizer's chat template renders the
// messages (@huggingface/jinja), and the assistant turns' tokens are found by rendering again without them.
import { Template } from '@huggingface/jinja';
import { DistillError } from '../core/errors.js';
import type { ChatTemplateSource, Tokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodedChat {
  ids: number[];
  /** 1 where the token is a training target: an assistant turn's content and its end-of-turn token. */
  targets: Uint8Array;
}

/** Roles whose turns are targets (what the model is trained to write). */
export const TARGET_ROLES: ReadonlySet<string> = new Set(['assistant']);

/** How far after a turn's content its end-of-turn token may lie (axolotl's ChatTemplateStrategy allows 3). */
const END_OF_TURN_WINDOW = 3;

/** Checks that a parsed JSON value is a list of `{role, content}` messages; `where` names file and line. */
export function toMessages(value: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new DistillError('E_DATA', `${where}: messages must be a non-empty list`, {
      expected: 'a list of {"role", "content"} objects',
      found: Array.isArray(value) ? 'an empty list' : value === null ? 'null' : typeof value,
      subject: where,
    });
  return value.map((m: unknown, i) => {
    const rec = (m && typeof m === 'object' ? m : {}) as Record<string, unknown>;
    if (typeof rec.role !== 'string' || rec.role === '')
      throw new DistillError('E_DATA', `${where}: message ${i} has no role`, {
        expected: 'a string field "role" (system, user, assistant, …)',
        found: m && typeof m === 'object' ? `fields ${Object.keys(rec).join(', ') || 'none'}` : JSON.stringify(m),
        subject: where,
      });
    if (typeof rec.content !== 'string')
      throw new DistillError('E_DATA', `${where}: message ${i} (${rec.role}) has no text content`, {
        expected: 'a string field "content"',
        found: rec.content === undefined ? 'none' : JSON.stringify(rec.content).slice(0, 80),
        subject: where,
      });
    return { role: rec.role, content: rec.content };
  });
}

/** First index where a and b differ (their common prefix length). */
function commonPrefix(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Common suffix length of a and b, at most `max`. */
function commonSuffix(a: number[], b: number[], max: number): number {
  let i = 0;
  while (i < max && a[a.length - 1 - i] === b[b.length - 1 - i]) i++;
  return i;
}

/**
 * Makes the encoder of one conversation. The whole conversation is rendered (add_generation_prompt
 * false) and encoded without added special tokens, as transformers' apply_chat_template(tokenize=True)
 * does. For each assistant message, the conversation is rendered and encoded again with that message's
 * content empty; the tokens where the two encodings differ (between their common prefix and common
 * suffix) are the message's content. This is axolotl's ChatTemplateStrategy.find_turn
 * (src/axolotl/prompt_strategies/chat_template.py) applied to the whole conversation instead of its
 * prefix, so templates that add a generation prompt unconditionally (Llama 3's) or look ahead still
 * work. The first special token within END_OF_TURN_WINDOW tokens after the content (Llama 3's
 * <|eot_id|>, ChatML's <|im_end|>) is a target too, as axolotl's train_on_eos "turn" marks it: the model
 * must learn to end its turn.
 */
export function chatEncoder(
  tok: Tokenizer,
  source: ChatTemplateSource,
): (messages: ChatMessage[], where: string) => EncodedChat {
  let template: Template;
  try {
    template = new Template(source.template);
  } catch (e) {
    throw new DistillError('E_TOKENIZER', `cannot parse the chat template in ${source.file}`, {
      found: (e as Error).message,
      subject: source.file,
      cause: e,
    });
  }
  const render = (messages: ChatMessage[], where: string): string => {
    try {
      return template.render({ ...source.specialTokens, messages, add_generation_prompt: false });
    } catch (e) {
      throw new DistillError('E_DATA', `${where}: the chat template failed on this conversation`, {
        found: (e as Error).message,
        hint: `the template comes from ${source.file}`,
        subject: where,
        cause: e,
      });
    }
  };
  return (messages, where) => {
    const ids = tok.encode(render(messages, where));
    const targets = new Uint8Array(ids.length);
    messages.forEach((m, i) => {
      if (!TARGET_ROLES.has(m.role) || m.content === '') return;
      const without = messages.map((x, j) => (j === i ? { role: x.role, content: '' } : x));
      const other = tok.encode(render(without, where));
      const start = commonPrefix(ids, other);
      const end = ids.length - commonSuffix(ids, other, Math.min(ids.length, other.length) - start);
      if (end <= start)
        throw new DistillError('E_DATA', `${where}: message ${i} (${m.role}) does not appear in the rendering`, {
          expected: 'a chat template that renders every assistant message',
          found: 'the rendering does not change when the message is emptied',
          hint: `check the template in ${source.file}`,
          subject: where,
        });
      targets.fill(1, start, end);
      for (let j = end; j < Math.min(ids.length, end + END_OF_TURN_WINDOW); j++) {
        if (tok.specialIds.has(ids[j] ?? -1)) {
          targets[j] = 1;
          break;
        }
      }
    });
    return { ids, targets };
  };
}
