// The official Ollama JavaScript client, unchanged, against `llmd serve`'s
// Ollama dialect. Started by tests/integration/openai_client_test.cpp with:
//   LLMD_ORIGIN       http://127.0.0.1:PORT
//   LLMD_API_KEY      an sk-... key of a user with tokens (sent as a Bearer header)
//   LLMD_MODEL        a chat model served by a real runner
//   LLMD_EMBED_MODEL  a model served by a runner started with --embeddings
//   LLMD_TOOL_MODEL   a chat model with Llama 3.1's real chat template (tool calls)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';

const host = process.env.LLMD_ORIGIN;
const apiKey = process.env.LLMD_API_KEY;
const model = process.env.LLMD_MODEL;
const embedModel = process.env.LLMD_EMBED_MODEL;
const toolModel = process.env.LLMD_TOOL_MODEL;
assert.ok(host && apiKey && model && embedModel && toolModel,
  'LLMD_ORIGIN, LLMD_API_KEY, LLMD_MODEL, LLMD_EMBED_MODEL, LLMD_TOOL_MODEL must be set');

const ollama = new Ollama({ host, headers: { Authorization: `Bearer ${apiKey}` } });
const hello = [{ role: 'user', content: 'Say hello in one word.' }];

test('list, show, version describe the served models', async () => {
  const { models } = await ollama.list();
  const tiny = models.find((m) => m.name === model);
  assert.ok(tiny, JSON.stringify(models));
  assert.equal(tiny.details.format, 'gguf');
  assert.ok(tiny.size > 0);
  const shown = await ollama.show({ model });
  assert.equal(shown.details.format, 'gguf');
  assert.ok(shown.capabilities.includes('completion'));
  const { version } = await ollama.version();
  assert.match(version, /^\d+\.\d+\.\d+$/);
});

test('chat, whole and streamed, agree at temperature 0', async () => {
  const request = { model, messages: hello, options: { num_predict: 12, temperature: 0 } };
  const whole = await ollama.chat(request);
  assert.equal(whole.message.role, 'assistant');
  assert.equal(typeof whole.message.content, 'string');
  assert.equal(whole.done, true);
  assert.ok(['stop', 'length'].includes(whole.done_reason), whole.done_reason);
  assert.ok(whole.prompt_eval_count > 0);
  assert.ok(whole.eval_count > 0 && whole.eval_count <= 12, String(whole.eval_count));
  let text = '';
  let last;
  for await (const part of await ollama.chat({ ...request, stream: true })) {
    text += part.message.content;
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(text, whole.message.content);
  assert.equal(last.eval_count, whole.eval_count);
  assert.equal(last.prompt_eval_count, whole.prompt_eval_count);
  // Now the model is loaded.
  const { models } = await ollama.ps();
  assert.ok(models.some((m) => m.name === model), JSON.stringify(models));
});

test('generate, whole and streamed, agree; format json gives an object', async () => {
  const request = { model, prompt: 'Once upon a time', options: { num_predict: 8, temperature: 0 } };
  const whole = await ollama.generate(request);
  assert.equal(typeof whole.response, 'string');
  assert.equal(whole.done, true);
  let text = '';
  for await (const part of await ollama.generate({ ...request, stream: true })) text += part.response;
  assert.equal(text, whole.response);
  const raw = await ollama.generate({ ...request, raw: true });
  assert.equal(raw.done, true);
  assert.ok(raw.prompt_eval_count < whole.prompt_eval_count, 'a raw prompt has no chat template around it');
  const json = await ollama.chat({ model, messages: hello, format: 'json', options: { num_predict: 30, temperature: 0 } });
  assert.ok(json.message.content.trimStart().startsWith('{'), json.message.content);
});

// A tool round trip's history: the assistant's call (arguments as an
// object, no id) and the tool's result, rendered by Llama 3.1's template.
// (Ollama has no way to force a call, which a random-weight model would need:
// replies with tool_calls are covered by the translation's unit tests.)
test('a conversation with a tool call and its result goes through the model\'s template', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const question = { role: 'user', content: 'Weather in Paris?' };
  const plain = await ollama.chat({ model: toolModel, messages: [question], tools, options: { num_predict: 4, temperature: 0 } });
  const answered = await ollama.chat({
    model: toolModel, tools, options: { num_predict: 4, temperature: 0 },
    messages: [
      question,
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '21 C and sunny', tool_name: 'get_weather' },
    ],
  });
  assert.equal(answered.done, true);
  assert.ok(answered.prompt_eval_count > plain.prompt_eval_count + 5,
    `${answered.prompt_eval_count} vs ${plain.prompt_eval_count}`);
});

test('embed returns one vector per input', async () => {
  const r = await ollama.embed({ model: embedModel, input: ['你好', 'hello world'] });
  assert.equal(r.embeddings.length, 2);
  assert.ok(r.embeddings[0].length > 0);
  assert.equal(r.embeddings[1].length, r.embeddings[0].length);
  assert.ok(r.prompt_eval_count > 0);
});

test('errors arrive as the client\'s ResponseError with Ollama\'s message', async () => {
  await assert.rejects(ollama.chat({ model: 'no-such-model', messages: hello }), (e) => {
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.status_code, 404);
    assert.match(e.error, /no-such-model/);
    return true;
  });
  await assert.rejects(ollama.chat({ model, messages: [{ role: 'user', content: 'x', images: ['AAAA'] }] }), (e) => {
    assert.equal(e.status_code, 400);
    assert.match(e.error, /text only/);
    return true;
  });
  const stranger = new Ollama({ host });
  await assert.rejects(stranger.list(), (e) => {
    assert.equal(e.status_code, 401);
    return true;
  });
});
