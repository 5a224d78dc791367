// The official OpenAI Node client, unchanged, against `llmd serve` speaking
// HTTPS itself. Started by tests/integration/hardening_tls_test.cpp with:
//   LLMD_BASE_URL        https://127.0.0.1:PORT/v1
//   LLMD_API_KEY         an sk-... key of a user with tokens
//   LLMD_MODEL           a chat model served by a real runner
//   NODE_EXTRA_CA_CERTS  the test CA that signed the server's certificate
// Node verifies the certificate (chain and 127.0.0.1) as it always does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.LLMD_BASE_URL;
const apiKey = process.env.LLMD_API_KEY;
const model = process.env.LLMD_MODEL;
assert.ok(baseURL && apiKey && model, 'LLMD_BASE_URL, LLMD_API_KEY, LLMD_MODEL must be set');
assert.ok(baseURL.startsWith('https://'), `not an https URL: ${baseURL}`);
assert.ok(process.env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS must name the test CA');

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

test('models.list over https', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model), `models: ${ids.join(', ')}`);
});

test('chat.completions.create over https', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'hello' }],
    max_tokens: 6,
    seed: 1,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 6);
});

test('streamed chat over https yields deltas and a final usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'count' }],
    max_tokens: 6,
    seed: 7,
    stream: true,
    stream_options: { include_usage: true },
  });
  let chunks = 0;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(chunks >= 2, `chunks: ${chunks}`);
  assert.ok(usage && usage.completion_tokens > 0, `usage: ${JSON.stringify(usage)}`);
});
