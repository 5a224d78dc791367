// The official Anthropic TypeScript client, unchanged, against `llmd serve`'s
// Messages API. Started by tests/integration/openai_client_test.cpp with:
//   LLMD_ORIGIN      http://127.0.0.1:PORT (the client adds /v1/messages)
//   LLMD_API_KEY     an sk-... key of a user with tokens (sent as x-api-key)
//   LLMD_MODEL       a chat model served by a real runner
//   LLMD_TOOL_MODEL  a chat model with Llama 3.1's real chat template (tool calls)
//   LLMD_REASONING_MODEL  a chat model with DeepSeek-R1's real template (thinking)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.LLMD_ORIGIN;
const apiKey = process.env.LLMD_API_KEY;
const model = process.env.LLMD_MODEL;
const toolModel = process.env.LLMD_TOOL_MODEL;
const reasoningModel = process.env.LLMD_REASONING_MODEL;
assert.ok(baseURL && apiKey && model && toolModel && reasoningModel,
  'LLMD_ORIGIN, LLMD_API_KEY, LLMD_MODEL, LLMD_TOOL_MODEL, LLMD_REASONING_MODEL must be set');

const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const hello = [{ role: 'user', content: 'Say hello in one word.' }];

function text(message) {
  return message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

test('messages.create returns a message with usage', async () => {
  const m = await client.messages.create({ model, max_tokens: 12, messages: hello, system: 'Be brief.' });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.match(m.id, /^msg_/);
  assert.ok(['end_turn', 'max_tokens'].includes(m.stop_reason), m.stop_reason);
  assert.equal(m.content[0].type, 'text');
  assert.ok(m.usage.input_tokens > 0);
  assert.ok(m.usage.output_tokens > 0 && m.usage.output_tokens <= 12, JSON.stringify(m.usage));
});

test('a stream assembles to the same message as a call at temperature 0', async () => {
  const request = { model, max_tokens: 16, messages: hello, temperature: 0 };
  const whole = await client.messages.create(request);
  const stream = client.messages.stream(request);
  const pieces = [];
  const events = [];
  stream.on('text', (t) => pieces.push(t));
  stream.on('streamEvent', (e) => events.push(e.type));
  const final = await stream.finalMessage();
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');
  assert.ok(events.includes('content_block_delta'));
  assert.equal(pieces.join(''), text(final));
  assert.equal(text(final), text(whole));
  assert.equal(final.stop_reason, whole.stop_reason);
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
  assert.equal(final.usage.input_tokens, whole.usage.input_tokens);
});

test('countTokens counts the prompt as a call bills it', async () => {
  const counted = await client.messages.countTokens({ model, messages: hello, system: 'Be brief.' });
  const m = await client.messages.create({ model, max_tokens: 1, messages: hello, system: 'Be brief.' });
  assert.equal(counted.input_tokens, m.usage.input_tokens);
  const longer = await client.messages.countTokens({
    model, messages: [...hello, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'Again, please.' }],
  });
  assert.ok(longer.input_tokens > counted.input_tokens);
});

// Llama 3.1's template with a forced tool: the reply is a tool_use block
// with the arguments as an object; its result goes back as a tool_result.
// Llama 3.1 writes a call as a JSON object, and its forced-call grammar lets
// a model write some text first: the random-weight test model is nudged to
// "{" (token 90 of its vocabulary) with llama.cpp's logit_bias, an extra
// body field the client passes on as it is.
const weatherTool = {
  name: 'get_weather',
  description: 'Current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'London'] } }, required: ['city'] },
};

test('a forced tool call is a tool_use block, and its tool_result goes back', async () => {
  const question = { role: 'user', content: 'Weather in Paris?' };
  const forced = {
    model: toolModel, max_tokens: 200, temperature: 0, messages: [question], tools: [weatherTool],
    tool_choice: { type: 'tool', name: 'get_weather' }, logit_bias: { 90: 100 },
  };
  const m = await client.messages.create(forced);
  assert.equal(m.stop_reason, 'tool_use', JSON.stringify(m.content));
  const call = m.content.find((b) => b.type === 'tool_use');
  assert.ok(call, JSON.stringify(m.content));
  assert.equal(call.name, 'get_weather');
  assert.ok(['Paris', 'London'].includes(call.input.city), JSON.stringify(call.input));
  assert.ok(call.id.length > 0);

  // Streamed, the same call arrives as input_json_delta pieces.
  const stream = client.messages.stream(forced);
  const final = await stream.finalMessage();
  const streamed = final.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(streamed.input, call.input);

  const next = await client.messages.create({
    model: toolModel, max_tokens: 8, temperature: 0, tools: [weatherTool], tool_choice: { type: 'none' },
    messages: [
      question,
      { role: 'assistant', content: m.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '21 C and sunny' }] },
    ],
  });
  assert.notEqual(next.stop_reason, 'tool_use');
  assert.ok(next.content.every((b) => b.type !== 'tool_use'));
  assert.ok(next.usage.input_tokens > m.usage.input_tokens);
});

test('errors arrive as the client library error classes, in Anthropic\'s shape', async () => {
  await assert.rejects(client.messages.create({ model, messages: hello }), (e) => {
    assert.ok(e instanceof Anthropic.BadRequestError, String(e));
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'invalid_request_error');
    assert.match(e.error.error.message, /max_tokens/);
    return true;
  });
  await assert.rejects(client.messages.create({ model: 'no-such-model', max_tokens: 4, messages: hello }), (e) => {
    assert.ok(e instanceof Anthropic.NotFoundError, String(e));
    assert.equal(e.error.error.type, 'not_found_error');
    return true;
  });
  const stranger = new Anthropic({ baseURL, apiKey: 'sk-not-a-key', maxRetries: 0 });
  await assert.rejects(stranger.messages.create({ model, max_tokens: 4, messages: hello }), (e) => {
    assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
    assert.equal(e.error.error.type, 'authentication_error');
    return true;
  });
});

// DeepSeek-R1's template opens the thinking block: what the model writes is
// a thinking block; a budget forces its end, and the answer follows.
test('thinking arrives as thinking blocks, streamed as thinking_delta, within budget_tokens', async () => {
  const request = {
    model: reasoningModel, max_tokens: 10, temperature: 0, messages: [{ role: 'user', content: '2+2?' }],
    thinking: { type: 'enabled', budget_tokens: 1024 },
  };
  const m = await client.messages.create(request);
  assert.equal(m.content[0].type, 'thinking', JSON.stringify(m.content));
  assert.ok(m.content[0].thinking.length > 0);
  assert.ok(m.content.every((b) => b.type !== 'text' || b.text === ''), JSON.stringify(m.content));
  const stream = client.messages.stream(request);
  const pieces = [];
  stream.on('thinking', (delta) => pieces.push(delta));
  const final = await stream.finalMessage();
  assert.equal(pieces.join(''), m.content[0].thinking);
  assert.equal(final.content[0].thinking, m.content[0].thinking);

  const budgeted = await client.messages.create({ ...request, max_tokens: 24, thinking: { type: 'enabled', budget_tokens: 3 } });
  assert.equal(budgeted.content[0].type, 'thinking');
  const answer = budgeted.content.find((b) => b.type === 'text');
  assert.ok(answer && answer.text.length > 0, JSON.stringify(budgeted.content));
});
