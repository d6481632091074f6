// The served wire formats, reply by reply: vLLM's prompt_logprobs (entry 0 null, k+1 items when the prompt's
// own token is outside the top k, rank order) and token_id:<id> keys, SGLang's [logprob, id, text] lists; every
// malformed reply is refused with the sequence, position and fault named.
import { describe, expect, it } from 'vitest';
import { sglangProtocol, vllmProtocol } from '../../src/teacher/backends/index.js';

const ctx = { model: 'm', nSeq: 1, T: 3, k: 2, V: 50, firstSeq: 7 };
const target = () => ({ ids: new Int32Array(6), logp: new Float32Array(6), tail: new Float32Array(6 / 2) });

/** A vLLM reply for one prompt of 3 tokens [5, 9, 4] at k = 2 (entries as LogprobsProcessor writes them). */
function vllmReply(over: Record<string, unknown> = {}) {
  return {
    id: 'cmpl-1',
    object: 'text_completion',
    model: 'm',
    choices: [
      {
        index: 0,
        text: 'x',
        prompt_logprobs: [
          null,
          // The prompt's token 9 is outside the top 2 (rank 4): three items, the first one dropped.
          {
            '9': { logprob: -3.5, rank: 4, decoded_token: 'a' },
            '12': { logprob: -0.5, rank: 1, decoded_token: 'b' },
            '3': { logprob: -1.25, rank: 2, decoded_token: 'c' },
          },
          { '4': { logprob: -0.75, rank: 1, decoded_token: 'd' }, '8': { logprob: -1.0, rank: 2, decoded_token: 'e' } },
        ],
        logprobs: {
          text_offset: [0],
          token_logprobs: [-0.1],
          tokens: ['token_id:30'],
          top_logprobs: [{ 'token_id:30': -0.1, 'token_id:31': -2.5 }],
        },
        finish_reason: 'length',
        ...over,
      },
    ],
  };
}

describe('vLLM replies', () => {
  it('keeps the k best ranks, maps entry t to row t − 1 and the generated token’s top_logprobs to row T − 1', () => {
    const out = target();
    vllmProtocol.readScore(vllmReply(), ctx, out, 0);
    expect(Array.from(out.ids)).toEqual([12, 3, 4, 8, 30, 31]);
    expect(Array.from(out.logp)).toEqual([-0.5, -1.25, -0.75, -1, Math.fround(-0.1), -2.5]);
    expect(out.tail[0]).toBeCloseTo(Math.log(1 - Math.exp(-0.5) - Math.exp(-1.25)), 6);
    const body = JSON.parse(vllmProtocol.scoreBody('m', Uint32Array.from([5, 9, 4, 1, 2, 3]), 2, 3, 2));
    expect(body).toMatchObject({
      model: 'm',
      prompt: [
        [5, 9, 4],
        [1, 2, 3],
      ],
      max_tokens: 1,
      prompt_logprobs: 2,
      logprobs: 2,
      return_tokens_as_token_ids: true,
    });
  });

  it('refuses what is wrong, naming the sequence and position', () => {
    const bad = (reply: unknown, pattern: RegExp) =>
      expect(() => vllmProtocol.readScore(reply, ctx, target(), 0)).toThrow(pattern);
    bad({ ...vllmReply(), model: 'other' }, /the reply is from model "other"/);
    bad({ ...vllmReply(), choices: [] }, /0 choices for 1 prompts \(sequences 7–7\)/);
    bad(
      vllmReply({ prompt_logprobs: [null, {}] }),
      /sequence 7, position 0: prompt_logprobs holds 2 positions, expected T = 3/,
    );
    const entries = vllmReply().choices[0]?.prompt_logprobs ?? [];
    bad(
      vllmReply({
        prompt_logprobs: [null, entries[1], { '77': { logprob: -1, rank: 1 }, '8': { logprob: -2, rank: 2 } }],
      }),
      /sequence 7, position 1: token id 77 is not below V = 50/,
    );
    bad(
      vllmReply({
        prompt_logprobs: [null, entries[1], { '4': { logprob: null, rank: 1 }, '8': { logprob: -2, rank: 2 } }],
      }),
      /position 1: log-probability NaN of id 4/,
    );
    bad(
      vllmReply({ prompt_logprobs: [null, entries[1], { '4': { logprob: -1, rank: 1 } }] }),
      /position 1: 1 log-probabilities, expected 2/,
    );
    bad(
      vllmReply({ logprobs: { top_logprobs: [{ a: -1, b: -2 }] } }),
      /position 2: top_logprobs key "a" is not token_id:<id>/,
    );
  });
});

describe('SGLang replies', () => {
  const result = (input: unknown[], output: unknown[]) => [
    { text: 'x', output_ids: [30], meta_info: { id: 'r', input_top_logprobs: input, output_top_logprobs: output } },
  ];
  const input = [
    null,
    [
      [-0.5, 12, null],
      [-1.25, 3, null],
    ],
    [
      [-0.75, 4, null],
      [-1.0, 8, null],
    ],
  ];
  const output = [
    [
      [-0.1, 30, null],
      [-2.5, 31, null],
    ],
  ];

  it('reads input_top_logprobs (entry 0 null) and output_top_logprobs[0]; a batch answers a list', () => {
    const out = target();
    sglangProtocol.readScore(result(input, output), ctx, out, 0);
    expect(Array.from(out.ids)).toEqual([12, 3, 4, 8, 30, 31]);
    const body = JSON.parse(sglangProtocol.scoreBody('m', Uint32Array.from([5, 9, 4]), 1, 3, 2));
    expect(body).toMatchObject({
      input_ids: [[5, 9, 4]],
      return_logprob: true,
      logprob_start_len: 0,
      top_logprobs_num: 2,
      sampling_params: { max_new_tokens: 1 },
    });
  });

  it('refuses a reply that is not one result per prompt, or a position that is wrong', () => {
    expect(() => sglangProtocol.readScore(result(input, output)[0], ctx, target(), 0)).toThrow(
      /no results for 1 prompts/,
    );
    expect(() => sglangProtocol.readScore(result(input.slice(0, 2), output), ctx, target(), 0)).toThrow(
      /sequence 7, position 0: input_top_logprobs holds 2 positions, expected T = 3/,
    );
    const dup = [
      null,
      input[1],
      [
        [-0.75, 4, null],
        [-1.0, 4, null],
      ],
    ];
    expect(() => sglangProtocol.readScore(result(dup, output), ctx, target(), 0)).toThrow(
      /position 1: token id 4 appears twice/,
    );
  });
});

describe('next-token log-probs (on-policy token-rkl)', () => {
  // The request's tokens [5, 9, 4]: row 0 takes the log-prob of 9, row 1 of 4, row 2 has no next token.
  const wanted = { ...ctx, tokens: Uint32Array.of(5, 9, 4) };
  const withTarget = () => ({ ...target(), target: new Float32Array(3) });
  const sglangResult = (tokens: unknown[]) => [
    {
      text: 'x',
      meta_info: {
        id: 'r',
        input_token_logprobs: tokens,
        input_top_logprobs: [
          null,
          [
            [-0.5, 12, null],
            [-1.25, 3, null],
          ],
          [
            [-0.75, 4, null],
            [-1.0, 8, null],
          ],
        ],
        output_top_logprobs: [
          [
            [-0.1, 30, null],
            [-2.5, 31, null],
          ],
        ],
      },
    },
  ];
  const sglangTokens = [
    [null, 5, null],
    [-3.5, 9, null],
    [-0.75, 4, null],
  ];

  it('vLLM: the prompt token’s own prompt_logprobs entry, inside the top k or injected beside it (rank k + 1)', () => {
    const out = withTarget();
    vllmProtocol.readScore(vllmReply(), wanted, out, 0);
    expect(Array.from(out.target.subarray(0, 2))).toEqual([-3.5, -0.75]);
    expect(out.target[2]).toBeNaN();
    // Without tokens in the context nothing is read: the cache path is untouched.
    const plain = withTarget();
    vllmProtocol.readScore(vllmReply(), ctx, plain, 0);
    expect(Array.from(plain.target)).toEqual([0, 0, 0]);
  });

  it('SGLang: meta_info.input_token_logprobs[t] = [logprob, id, text] of prompt token t', () => {
    const out = withTarget();
    sglangProtocol.readScore(sglangResult(sglangTokens), wanted, out, 0);
    expect(Array.from(out.target.subarray(0, 2))).toEqual([-3.5, -0.75]);
    expect(out.target[2]).toBeNaN();
  });

  it('refuses a missing entry, another token’s entry, and a log-probability that is not finite or ≤ 0', () => {
    const entries = vllmReply().choices[0]?.prompt_logprobs ?? [];
    const { '9': _own, ...topOnly } = entries[1] as Record<string, unknown>;
    const bad = (run: () => void, pattern: RegExp) => expect(run).toThrow(pattern);
    bad(
      () =>
        vllmProtocol.readScore(vllmReply({ prompt_logprobs: [null, topOnly, entries[2]] }), wanted, withTarget(), 0),
      /sequence 7, position 0: prompt_logprobs\[1\] has no entry for the prompt's token 9/,
    );
    const nan = { ...(entries[1] as object), '9': { logprob: 'x', rank: 4 } };
    bad(
      () => vllmProtocol.readScore(vllmReply({ prompt_logprobs: [null, nan, entries[2]] }), wanted, withTarget(), 0),
      /sequence 7, position 0: log-probability NaN of the next token 9/,
    );
    bad(
      () =>
        sglangProtocol.readScore(
          sglangResult([sglangTokens[0], [-3.5, 10, null], sglangTokens[2]]),
          wanted,
          withTarget(),
          0,
        ),
      /sequence 7, position 0: input_token_logprobs\[1\] is for token 10, expected 9/,
    );
    bad(
      () =>
        sglangProtocol.readScore(
          sglangResult([sglangTokens[0], sglangTokens[1], [0.5, 4, null]]),
          wanted,
          withTarget(),
          0,
        ),
      /sequence 7, position 1: log-probability 0.5 of the next token 4/,
    );
    bad(
      () => sglangProtocol.readScore(sglangResult(sglangTokens.slice(0, 2)), wanted, withTarget(), 0),
      /sequence 7, position 0: input_token_logprobs holds 2 positions, expected T = 3/,
    );
  });
});
