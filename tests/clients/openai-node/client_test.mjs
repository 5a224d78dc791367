// The official OpenAI Node client, unchanged, against `llmd serve`.
// Started by tests/integration/openai_client_test.cpp with:
//   LLMD_BASE_URL  http://127.0.0.1:PORT/v1
//   LLMD_API_KEY   an sk-... key of a user with tokens
//   LLMD_MODEL     a chat model served by a real runner
//   LLMD_EMBED_MODEL  a model served by a runner started with --embeddings
//   LLMD_TOOL_MODEL   a chat model with Llama 3.1's real chat template (tool calls)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.LLMD_BASE_URL;
const apiKey = process.env.LLMD_API_KEY;
const model = process.env.LLMD_MODEL;
const embedModel = process.env.LLMD_EMBED_MODEL;
const toolModel = process.env.LLMD_TOOL_MODEL;
assert.ok(baseURL && apiKey && model && embedModel && toolModel,
  'LLMD_BASE_URL, LLMD_API_KEY, LLMD_MODEL, LLMD_EMBED_MODEL, LLMD_TOOL_MODEL must be set');

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

test('models.list pages through the served models', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model), `models: ${ids.join(', ')}`);
  assert.ok(ids.includes(embedModel), `models: ${ids.join(', ')}`);
});

test('chat.completions.create returns a message and usage', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '你好' }],
    max_tokens: 8,
    temperature: 0.7,
    top_p: 0.9,
    seed: 42,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('streaming with include_usage yields deltas and a final usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'count' }],
    max_tokens: 6,
    seed: 7,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 2, `chunks: ${chunks}`);
  assert.ok(finish, 'a finish_reason arrived');
  assert.ok(usage, 'the usage chunk arrived');
  assert.ok(usage.completion_tokens > 0 && usage.completion_tokens <= 6);
  assert.equal(typeof text, 'string');
});

test('the stream helper (chat.completions.stream) assembles the final message', async () => {
  const runner = client.chat.completions.stream({
    model,
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 5,
    seed: 3,
  });
  const done = await runner.finalChatCompletion();
  assert.equal(done.choices[0].message.role, 'assistant');
  assert.equal(typeof done.choices[0].message.content, 'string');
});

test('aborting a stream mid-way leaves the server serving', async () => {
  // The tiny model is fast and may finish before the abort lands; what must
  // hold is that an abort never breaks the server or the next request.
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'long story' }], max_tokens: 400, stream: true },
    { signal: controller.signal },
  );
  let got = 0;
  let aborted = false;
  try {
    for await (const _chunk of stream) {
      if (++got === 1) controller.abort();
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', String(e));
    aborted = true;
  }
  assert.ok(aborted || got >= 1);
  for (let i = 0; i < 3; i++) {
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'again' }], max_tokens: 2 });
    assert.equal(typeof r.choices[0].message.content, 'string');
  }
});

test('response_format json_schema gives JSON that matches the schema', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Give a name and an age.' }],
    max_tokens: 60,
    seed: 11,
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'person',
        strict: true,
        schema: {
          type: 'object',
          properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' } },
          required: ['name', 'age'],
          additionalProperties: false,
        },
      },
    },
  });
  const content = r.choices[0].message.content;
  if (r.choices[0].finish_reason === 'stop') {
    const obj = JSON.parse(content);
    assert.deepEqual(Object.keys(obj).sort(), ['age', 'name']);
    assert.equal(typeof obj.name, 'string');
    assert.ok(Number.isInteger(obj.age));
  } else {
    // Cut by max_tokens: still a prefix of a valid document.
    assert.ok(content.startsWith('{'), content);
  }
});

test('response_format json_object gives a JSON object', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Reply in JSON.' }],
    max_tokens: 40,
    seed: 5,
    response_format: { type: 'json_object' },
  });
  const content = r.choices[0].message.content;
  assert.ok(content.trimStart().startsWith('{'), content);
  if (r.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(content), 'object');
});

test('legacy completions.create works, streamed and not', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, seed: 1 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens > 0);
  const stream = await client.completions.create({ model, prompt: 'Hello', max_tokens: 4, stream: true });
  let n = 0;
  for await (const chunk of stream) {
    assert.equal(typeof chunk.choices[0]?.text ?? '', 'string');
    n++;
  }
  assert.ok(n >= 1);
});

test('embeddings.create returns one vector per input (float and base64)', async () => {
  const r = await client.embeddings.create({ model: embedModel, input: ['你好', 'hello world'] });
  assert.equal(r.data.length, 2);
  const dim = r.data[0].embedding.length;
  assert.ok(dim > 0);
  assert.equal(r.data[1].embedding.length, dim);
  assert.ok(r.data[0].embedding.every((x) => Number.isFinite(x)));
  assert.ok(r.usage.prompt_tokens > 0);
  // The client asks for base64 by default when no encoding_format is given
  // and decodes it; an explicit float request must agree with it.
  const f = await client.embeddings.create({ model: embedModel, input: '你好', encoding_format: 'float' });
  assert.equal(f.data[0].embedding.length, dim);
  for (let i = 0; i < dim; i++) assert.ok(Math.abs(f.data[0].embedding[i] - r.data[0].embedding[i]) < 1e-4);
});

test('errors arrive as the client library error classes', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
  );
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 99 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
  );
  const wrongKey = new OpenAI({ baseURL, apiKey: 'sk-not-a-real-key', maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'London'] } },
      required: ['city'],
    },
  },
};
// Llama 3.1 writes a call as a JSON object. The grammar of tool_choice
// "required" lets a model write some text first, so the random-weight test
// model is nudged to "{" (token 90 of its Qwen2 vocabulary); the grammar
// does the rest.
const question = { role: 'user', content: 'Weather in Paris?' };
const forcedCall = {
  model: toolModel,
  messages: [question],
  tools: [weatherTool],
  tool_choice: 'required',
  parallel_tool_calls: false,
  logit_bias: { 90: 100 },
  max_tokens: 200,
  temperature: 0,
};

function assertWeatherCall(call) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.ok(['Paris', 'London'].includes(JSON.parse(call.function.arguments).city), call.function.arguments);
}

test('a forced tool call arrives as message.tool_calls with finish_reason tool_calls', async () => {
  const r = await client.chat.completions.create(forcedCall);
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  assertWeatherCall(choice.message.tool_calls[0]);
  assert.ok(r.usage.completion_tokens > 0);
});

test('the stream helper assembles the call from deltas, and the tool result goes back', async () => {
  const stream = client.chat.completions.stream(forcedCall);
  const done = [];
  stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
  const final = await stream.finalChatCompletion();
  const message = final.choices[0].message;
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(message.tool_calls.length, 1);
  assertWeatherCall(message.tool_calls[0]);
  assert.equal(done.length, 1);
  assert.equal(done[0].name, 'get_weather');
  assert.deepEqual(done[0].parsed_arguments ?? JSON.parse(done[0].arguments), JSON.parse(message.tool_calls[0].function.arguments));

  // The application runs the tool and sends its result back.
  const next = await client.chat.completions.create({
    model: toolModel,
    messages: [
      question,
      message,
      { role: 'tool', tool_call_id: message.tool_calls[0].id, content: JSON.stringify({ temperature_c: 21, sky: 'sunny' }) },
    ],
    tools: [weatherTool],
    tool_choice: 'none',
    max_tokens: 5,
    temperature: 0,
  });
  assert.equal(next.choices[0].message.role, 'assistant');
  assert.equal(typeof next.choices[0].message.content, 'string');
  assert.notEqual(next.choices[0].finish_reason, 'tool_calls');
  assert.equal(next.choices[0].message.tool_calls, undefined);
  assert.ok(next.usage.prompt_tokens > 0);
});

// The Responses API (stateless): the same model through responses.create.
test('responses.create returns output items, output_text and usage', async () => {
  const r = await client.responses.create({
    model, input: 'Say hello in one word.', instructions: 'Be brief.', max_output_tokens: 12,
  });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
  if (r.status === 'incomplete') assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  assert.equal(r.output.at(-1).type, 'message');
  assert.equal(typeof r.output_text, 'string');
  assert.equal(r.output_text, r.output.at(-1).content[0].text);
  assert.ok(r.usage.input_tokens > 0);
  assert.ok(r.usage.output_tokens > 0 && r.usage.output_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  assert.equal(r.store, false);
});

test('a Responses stream assembles to the same text as a call at temperature 0', async () => {
  const request = { model, input: [{ role: 'user', content: 'Say hello in one word.' }], max_output_tokens: 16, temperature: 0 };
  const whole = await client.responses.create(request);
  const stream = client.responses.stream(request);
  const deltas = [];
  const types = [];
  stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
  const sequence = [];
  let ended;  // response.completed, or response.incomplete when max_output_tokens cut it
  stream.on('event', (e) => {
    types.push(e.type);
    sequence.push(e.sequence_number);
    if (e.type === 'response.completed' || e.type === 'response.incomplete') ended = e.response;
  });
  const final = await stream.finalResponse();
  assert.equal(types[0], 'response.created');
  assert.deepEqual(sequence, sequence.map((_, i) => i), 'sequence numbers count up from 0 in the order sent');
  assert.ok(['response.completed', 'response.incomplete'].includes(types.at(-1)), types.at(-1));
  assert.ok(types.includes('response.output_item.added') && types.includes('response.output_item.done'));
  assert.equal(deltas.join(''), whole.output_text);
  // (a stream's final response has no output_text helper: the text is in its items)
  const finalText = final.output.filter((i) => i.type === 'message').flatMap((i) => i.content).map((c) => c.text).join('');
  assert.equal(finalText, whole.output_text);
  assert.equal(ended.status, whole.status);
  assert.equal(ended.usage.output_tokens, whole.usage.output_tokens);
  assert.equal(ended.usage.input_tokens, whole.usage.input_tokens);
});

test('a Responses function call round trip', async () => {
  const tool = { type: 'function', name: 'get_weather', description: 'Current weather in a city', strict: false,
    parameters: weatherTool.function.parameters };
  const question = { role: 'user', content: 'Weather in Paris?' };
  // logit_bias: llama.cpp's extension, passed on as an extra body field (see forcedCall).
  const r = await client.responses.create({
    model: toolModel, input: [question], tools: [tool], tool_choice: 'required', parallel_tool_calls: false,
    logit_bias: { 90: 100 }, max_output_tokens: 200, temperature: 0,
  });
  const call = r.output.find((item) => item.type === 'function_call');
  assert.ok(call, JSON.stringify(r.output));
  assert.equal(call.name, 'get_weather');
  assert.ok(['Paris', 'London'].includes(JSON.parse(call.arguments).city), call.arguments);
  const next = await client.responses.create({
    model: toolModel, tools: [tool], tool_choice: 'none', max_output_tokens: 8, temperature: 0,
    input: [question, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temperature_c":21}' }],
  });
  assert.ok(next.output.every((item) => item.type !== 'function_call'));
  assert.ok(next.usage.input_tokens > r.usage.input_tokens);
});

test('previous_response_id is refused: llmd keeps no responses', async () => {
  await assert.rejects(client.responses.create({ model, input: 'x', previous_response_id: 'resp_123' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.match(e.message, /previous_response_id/);
    return true;
  });
});

test('a reasoning model\'s thinking is a reasoning item, streamed as reasoning_text deltas', async () => {
  const reasoningModel = process.env.LLMD_REASONING_MODEL;
  assert.ok(reasoningModel, 'LLMD_REASONING_MODEL must be set');
  const request = { model: reasoningModel, input: '2+2?', max_output_tokens: 10, temperature: 0 };
  const r = await client.responses.create(request);
  assert.equal(r.output[0].type, 'reasoning', JSON.stringify(r.output));
  const thought = r.output[0].content[0].text;
  assert.ok(thought.length > 0);
  const stream = client.responses.stream(request);
  const deltas = [];
  stream.on('response.reasoning_text.delta', (e) => deltas.push(e.delta));
  await stream.finalResponse();
  assert.equal(deltas.join(''), thought);
});
