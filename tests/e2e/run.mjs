// End-to-end test of the web UI: a real `llmd serve` (temporary data dir,
// random port, a real runner on the generated tiny model) driven by Debian's
// Chromium through playwright-core.
//
//   node tests/e2e/run.mjs --llmd build/debug/bin/llmd --web web --out build/debug/e2e-artifacts
//
// Prints one line per step and "N passed, M failed"; exits non-zero on any
// failure, including a missing browser or UI build (never skips).
import { spawn, execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
)
const llmd = path.resolve(args.llmd ?? 'build/debug/bin/llmd')
const webDir = path.resolve(args.web ?? 'web')
const outDir = path.resolve(args.out ?? 'build/e2e-artifacts')
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium'
const adminPassword = 'e2e-admin-password'

const results = []
let browser
let server
let tmp

// However the script ends (a signal, a closed stdout), the server goes too.
process.on('exit', () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(1))

function fatal(msg) {
  console.error(`e2e: ${msg}`)
  console.log('0 passed, 1 failed')
  process.exit(1)
}

for (const [what, p] of [
  ['llmd binary', llmd],
  ['Chromium (Debian package chromium)', chromiumPath],
  ['the built UI (web/dist/index.html; run ./setup.sh build or npm run build in web/)', path.join(webDir, 'dist/index.html')],
  ['playwright-core (npm ci in web/)', path.join(webDir, 'node_modules/playwright-core/package.json')],
]) {
  if (!fs.existsSync(p)) fatal(`missing ${what}: ${p}`)
}
const require = createRequire(path.join(webDir, 'package.json'))
const { chromium } = require('playwright-core')

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

async function waitForHealth(base, ms) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    try {
      const r = await fetch(`${base}/health`)
      if (r.ok) return
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error('llmd serve did not become healthy')
}

// A stand-in for the Hugging Face Hub's API (GET /api/models/{repo}?blobs=true, the
// shape the real one answers) and its file downloads, sent slowly enough that the
// download dialog shows its progress. Resolves to its base URL.
function startHubStub(modelFile) {
  const content = fs.readFileSync(modelFile)
  const sha256 = crypto.createHash('sha256').update(content).digest('hex')
  const repo = 'e2e/Tiny-GGUF'
  const files = ['tiny-q4_k_m.gguf', 'tiny-q8_0.gguf']
  const info = {
    id: repo,
    modelId: repo,
    siblings: [
      { rfilename: 'README.md', size: 12 },
      ...files.map((f) => ({ rfilename: f, size: content.length, lfs: { sha256, size: content.length } })),
    ],
  }
  const hub = http.createServer((req, res) => {
    if (req.url === `/api/models/${repo}?blobs=true`) {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify(info))
      return
    }
    const file = files.find((f) => req.url === `/${repo}/resolve/main/${f}`)
    if (!file) {
      res.writeHead(404)
      res.end('not found')
      return
    }
    res.writeHead(200, { 'Content-Length': content.length, 'Content-Type': 'application/octet-stream' })
    let at = 0
    const chunk = 256 * 1024 // the 24 MB model in some five seconds
    const timer = setInterval(() => {
      if (at >= content.length || res.destroyed) {
        clearInterval(timer)
        res.end()
        return
      }
      res.write(content.subarray(at, at + chunk))
      at += chunk
    }, 50)
    req.on('close', () => clearInterval(timer))
  })
  return new Promise((resolve) => hub.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${hub.address().port}`)))
}

async function startServer() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmd-e2e-'))
  const models = path.join(tmp, 'models')
  fs.mkdirSync(models)
  execFileSync(llmd, ['dev', 'make-test-model', '--arch', 'qwen2', '--seed', '7', '--out', path.join(models, 'tiny.gguf')], {
    stdio: 'ignore',
  })
  const hubUrl = await startHubStub(path.join(models, 'tiny.gguf'))
  const port = await freePort()
  const runnerBase = await freePort()
  const yaml = `server:
  host: 127.0.0.1
  port: ${port}
  threads: 2
  data_dir: ${tmp}/data
  web_dir: ${path.join(webDir, 'dist')}
database: "sqlite:${tmp}/data/llmd.db"
logging: { level: info, format: json }
limits: { ip_rpm: 100000, user_rpm: 100000 }
auth: { bcrypt_cost: 10, initial_tokens: 100000 }
models:
  dir: ${models}
  port_range: "${runnerBase}-${runnerBase + 20}"
  default_model: tiny
  hf_endpoint: ${hubUrl}
  list:
    - { name: tiny, file: tiny.gguf, aliases: [gpt-4o-mini] }
`
  fs.writeFileSync(path.join(tmp, 'llmd.yaml'), yaml)
  const log = fs.openSync(path.join(outDir, 'serve.log'), 'w')
  server = spawn(llmd, ['serve', '-c', path.join(tmp, 'llmd.yaml')], {
    cwd: tmp,
    env: { ...process.env, LLMD_ADMIN_PASSWORD: adminPassword },
    stdio: ['ignore', log, log],
  })
  const base = `http://127.0.0.1:${port}`
  await waitForHealth(base, 60_000)
  return base
}

async function step(name, fn) {
  const started = Date.now()
  try {
    await fn()
    results.push([name, true])
    console.log(`ok   ${name} (${Date.now() - started} ms)`)
  } catch (e) {
    results.push([name, false])
    console.log(`FAIL ${name}: ${e?.message ?? e}`)
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg)
}

async function shot(page, name) {
  await page.waitForTimeout(300) // let charts and transitions settle
  await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true })
}

// The text field of an Element Plus input (its data-testid lands on the native element or its wrapper).
function inputOf(page, id) {
  const t = `[data-testid="${id}"]`
  return page.locator(`input${t}, textarea${t}, ${t} input, ${t} textarea`).first()
}

async function login(page, base, username, password) {
  await page.goto(`${base}/login`)
  await inputOf(page, 'username').fill(username)
  await inputOf(page, 'password').fill(password)
  await page.getByTestId('auth-submit').click()
  await page.getByTestId('dashboard').waitFor()
}

async function logout(page) {
  await page.getByTestId('user-menu').click()
  await page.getByTestId('logout').click()
  await page.waitForURL(/\/login/)
}

// A JSON call of the API outside the browser: { status, body }.
async function apiCall(base, method, route, { token, body } = {}) {
  const headers = { 'Content-Type': 'application/json' }
  if (token) headers.Authorization = `Bearer ${token}`
  const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }
  const r = await fetch(`${base}${route}`, init)
  return { status: r.status, body: await r.json().catch(() => null) }
}

async function apiLogin(base, username, password) {
  return apiCall(base, 'POST', '/api/v1/auth/login', { body: { username, password } })
}

// Fills and submits the change-password dialog (already open).
async function changePasswordIn(page, current, next) {
  await inputOf(page, 'pw-current').fill(current)
  await inputOf(page, 'pw-new').fill(next)
  await inputOf(page, 'pw-confirm').fill(next)
  await page.getByTestId('pw-submit').click()
}

// The conversation open in the chat page (its id is in the address, ?c=), as the server stores it.
async function storedConversation(page, base) {
  const id = new URL(page.url()).searchParams.get('c')
  const token = await page.evaluate(() => localStorage.getItem('llmd.token'))
  const r = await apiCall(base, 'GET', `/api/v1/conversations/${id}`, { token })
  return r.status === 200 ? r.body : null
}

// Everything the page keeps in the browser: localStorage, sessionStorage and the IndexedDB names.
async function browserStorage(page) {
  return page.evaluate(async () => {
    const all = []
    for (const s of [localStorage, sessionStorage]) {
      for (let i = 0; i < s.length; i++) all.push(`${s.key(i)}=${s.getItem(s.key(i))}`)
    }
    for (const db of (await indexedDB.databases?.()) ?? []) all.push(`indexeddb:${db.name}`)
    return all.join('\n')
  })
}

async function balanceShown(page) {
  const text = await page.getByTestId('balance').innerText()
  return Number(text.replace(/[^0-9]/g, ''))
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true })
  const base = await startServer()
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] })
  const context = await browser.newContext({ viewport: { width: 1366, height: 850 }, locale: 'en-US' })
  const page = await context.newPage()
  const consoleErrors = []
  page.on('pageerror', (e) => consoleErrors.push(String(e)))
  const network = fs.createWriteStream(path.join(outDir, 'network.log'))
  const stamp = () => new Date().toISOString().slice(11, 23)
  page.on('request', (r) => network.write(`${stamp()} >> ${r.method()} ${r.url()}\n`))
  page.on('requestfinished', (r) => network.write(`${stamp()} << ${r.url()}\n`))
  page.on('requestfailed', (r) => network.write(`${stamp()} !! ${r.url()} ${r.failure()?.errorText}\n`))
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text())
  })
  const user = `e2e_${Date.now().toString(36)}`
  let password = 'e2e-password-1'

  await step('anonymous visit goes to the login page, keeping the target', async () => {
    await page.goto(`${base}/chat`)
    await page.waitForURL(/\/login\?redirect=(%2F|\/)chat/)
    await page.getByTestId('auth-submit').waitFor()
    await shot(page, '01-login')
  })

  await step('register validates input and shows API errors', async () => {
    await page.locator('#tab-register').click()
    await inputOf(page, 'username').fill('ab')
    await inputOf(page, 'password').fill('short')
    await inputOf(page, 'email').fill('not-an-email')
    await page.getByTestId('auth-submit').click()
    await page.waitForFunction(() => document.querySelectorAll('.el-form-item__error').length === 3, null, {
      timeout: 5000,
    })
    // A duplicate of the bootstrap admin: the server's 409 message is shown.
    await inputOf(page, 'username').fill('admin')
    await inputOf(page, 'password').fill(password)
    await inputOf(page, 'email').fill('admin2@example.com')
    await page.getByTestId('auth-submit').click()
    await page.getByTestId('auth-error').waitFor()
    await shot(page, '02-register-error')
  })

  await step('register', async () => {
    await inputOf(page, 'username').fill(user)
    await inputOf(page, 'password').fill(password)
    await inputOf(page, 'email').fill(`${user}@example.com`)
    await page.getByTestId('auth-submit').click()
    await page.waitForURL(/\/chat$/) // back to the page first asked for
    check((await balanceShown(page)) === 100000, 'new user balance should be 100000')
    await logout(page)
  })

  await step('login and dashboard', async () => {
    await login(page, base, user, password)
    await page.getByTestId('dash-balance').waitFor()
    await shot(page, '03-dashboard-empty')
  })

  await step('admin pages are hidden and guarded for users', async () => {
    check((await page.getByTestId('nav-/admin/users').count()) === 0, 'admin nav visible to a user')
    await page.goto(`${base}/admin/users`)
    await page.getByTestId('dashboard').waitFor()
    check(!page.url().includes('/admin'), 'non-admin reached an admin page')
  })

  let balanceAfterChat = 0
  await step('chat streams a reply and shows its cost', async () => {
    await page.goto(`${base}/chat`)
    await page.getByTestId('model-status').waitFor()
    await inputOf(page, 'max-tokens').fill('48') // keep the sanitizer build's worker quick
    await inputOf(page, 'chat-input').fill('Hello, who are you?')
    await page.getByTestId('chat-send').click()
    // The stop button is there while the reply streams.
    await page.getByTestId('chat-stop').waitFor({ timeout: 10_000 })
    const reply = page.getByTestId('assistant-message').last()
    await reply.getByTestId('reply-cost').waitFor({ timeout: 180_000 })
    await shot(page, '04-chat')
    // The tiny model's words are noise (often only newlines, which Markdown
    // renders as nothing): check the text the server stored for the reply.
    const stored = await storedConversation(page, base)
    const raw = stored?.messages?.at(-1)?.content ?? ''
    check(raw.length > 0, 'empty reply')
    const shown = (await reply.innerText()).trim()
    check(shown.length > 0, 'nothing shown for the reply')
    const cost = Number((await reply.getByTestId('reply-cost').innerText()).replace(/[^0-9]/g, ''))
    check(cost > 0, 'reply cost should be positive')
    balanceAfterChat = await balanceShown(page)
    check(balanceAfterChat === 100000 - cost, `balance ${balanceAfterChat} != 100000 - ${cost}`)
    check(stored.messages.at(-1).tokens_consumed === cost, 'the stored reply has another cost')
    const kept = await browserStorage(page)
    check(!kept.includes('Hello, who are you?'), `conversation text kept in the browser: ${kept}`)
    await shot(page, '04-chat')
  })

  await step('chat history survives a reload', async () => {
    await page.reload()
    await page.getByTestId('assistant-message').first().waitFor()
    check((await page.getByTestId('user-message').first().innerText()).includes('Hello, who are you?'), 'history lost')
  })

  await step('convert JSON to YAML', async () => {
    await page.goto(`${base}/convert`)
    await page.getByTestId('convert-run').click()
    await page.getByTestId('convert-meta').waitFor()
    const out = await inputOf(page, 'convert-output').inputValue()
    check(/name: llmd/.test(out) && /port: 8080/.test(out), `unexpected YAML: ${out}`)
    check((await page.getByTestId('convert-meta').innerText()).includes('parser'), 'method not shown')
    await shot(page, '05-convert')
  })

  await step('convert shows the parser error with line and column', async () => {
    await inputOf(page, 'convert-input').fill('{\n  "a": 1,\n  "b": ]\n}')
    await page.getByTestId('convert-run').click()
    const err = page.getByTestId('convert-error')
    await err.waitFor()
    check(/line 3/i.test(await err.innerText()), `no line number in: ${await err.innerText()}`)
    await shot(page, '06-convert-error')
  })

  await step('homework 2+3×4 = 14 is graded correct', async () => {
    await page.goto(`${base}/homework`)
    await inputOf(page, 'hw-question').fill('2+3×4')
    await inputOf(page, 'hw-answer').fill('14')
    await page.getByTestId('hw-submit').click()
    const verdict = page.getByTestId('hw-verdict').or(page.getByTestId('hw-error'))
    await verdict.first().waitFor({ timeout: 180_000 })
    if (await page.getByTestId('hw-error').isVisible()) {
      throw new Error(`homework API: ${await page.getByTestId('hw-error').innerText()}`)
    }
    check((await page.getByTestId('hw-verdict').getAttribute('data-correct')) === 'true', 'not graded correct')
    await shot(page, '07-homework')
  })

  await step('subtitle job on an SRT completes with a progress bar', async () => {
    const srt = path.join(tmp, 'sample.srt')
    const cues = []
    for (let i = 1; i <= 6; i++) {
      cues.push(`${i}\n00:00:0${i},000 --> 00:00:0${i},900\nLine number ${i} of the test.\n`)
    }
    fs.writeFileSync(srt, cues.join('\n'))
    await page.goto(`${base}/subtitles`)
    await page.locator('.el-upload input[type=file]').setInputFiles(srt)
    await page.getByTestId('sub-start').click()
    const job = page.getByTestId('job').first()
    await job.waitFor({ timeout: 20_000 }).catch(async () => {
      const err = page.getByTestId('sub-error')
      throw new Error((await err.count()) ? `subtitle API: ${await err.innerText()}` : 'no job appeared')
    })
    await job.getByTestId('job-progress').waitFor()
    await page.locator('[data-testid=job][data-status=done], [data-testid=job][data-status=failed]').first().waitFor({
      timeout: 240_000,
    })
    const status = await job.getAttribute('data-status')
    check(status === 'done', `job ended ${status}`)
    const bar = job.getByTestId('job-progress').locator('[role=progressbar]').or(job.locator('[role=progressbar]'))
    check((await bar.first().getAttribute('aria-valuenow')) === '100', 'progress bar not at 100%')
    await job.getByTestId('job-download').waitFor()
    await shot(page, '08-subtitles')
  })

  await step('API key create (shown once) and revoke', async () => {
    await page.goto(`${base}/keys`)
    await inputOf(page, 'key-name').fill('e2e key')
    await page.getByTestId('key-create').click()
    const key = (await page.getByTestId('new-key').innerText()).trim()
    check(key.startsWith('sk-'), `unexpected key ${key}`)
    // The key works against the OpenAI-compatible API.
    const models = await fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${key}` } })
    check(models.status === 200, `key rejected: ${models.status}`)
    await page.getByTestId('key-table').getByText('e2e key').waitFor()
    await shot(page, '09-keys')
    await page.getByTestId('key-revoke').first().click()
    await page.locator('.el-message-box .el-button--primary').click()
    await page.getByTestId('key-table').getByText('e2e key').waitFor({ state: 'detached' })
    const after = await fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${key}` } })
    check(after.status === 401, `revoked key still accepted: ${after.status}`)
  })

  await step('an expired session goes back to login and returns to the page', async () => {
    await page.evaluate(() => localStorage.setItem('llmd.token', 'not-a-valid-token'))
    await page.goto(`${base}/keys`)
    await page.waitForURL(/\/login\?redirect=(%2F|\/)keys/, { timeout: 15_000 })
    await page.getByText(/expired|过期/).first().waitFor()
    await inputOf(page, 'username').fill(user)
    await inputOf(page, 'password').fill(password)
    await page.getByTestId('auth-submit').click()
    await page.waitForURL(/\/keys$/)
  })

  let userBalance = 0
  await step('admin grants tokens and the user balance updates', async () => {
    userBalance = await balanceShown(page)
    await logout(page)
    // A shared computer: the next person to sign in finds none of the user's conversations.
    const leftBehind = await browserStorage(page)
    check(!leftBehind.includes('Hello, who are you?'), `conversation text left in the browser: ${leftBehind}`)
    check(!leftBehind.includes('llmd.conversations'), `the old conversation key is back: ${leftBehind}`)
    await login(page, base, 'admin', adminPassword)
    await page.goto(`${base}/chat`)
    await page.getByTestId('model-status').waitFor()
    check((await page.getByTestId('user-message').count()) === 0, "the previous user's chat is shown to the next")
    check((await page.getByTestId('conv-item').count()) === 0, "the previous user's conversations are listed")
    await page.goto(`${base}/admin/users`)
    await inputOf(page, 'user-search').fill(user)
    await page.getByTestId('user-search-btn').click()
    const row = page.getByTestId('users-table').locator('tr', { hasText: user })
    await row.waitFor()
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=users-table] tbody tr').length === 1,
      null,
      { timeout: 10_000 },
    )
    // Admins see how much a user keeps in conversations, never what.
    await row.getByTestId('user-conversations').getByText(/^1 (个 )?· /).waitFor() // the UI starts in Chinese
    check(!(await page.content()).includes('Hello, who are you?'), "a user's conversation text on an admin page")
    await row.getByTestId('user-grant').click()
    await inputOf(page, 'grant-amount').fill('500')
    await inputOf(page, 'grant-reason').fill('e2e bonus')
    await page.getByTestId('grant-save').click()
    const expected = (userBalance + 500).toLocaleString('en-US')
    await row.getByTestId('user-tokens').getByText(expected).waitFor()
    await shot(page, '10-admin-users')
    await page.goto(`${base}/admin/models`)
    await page.getByTestId('models-table').getByText('tiny').waitFor()
    const aliases = await page.getByTestId('model-aliases').first().innerText()
    check(aliases.includes('gpt-4o-mini'), `the models page shows aliases as "${aliases}"`)
    // The host's devices, with their memory (the CPU at least; a GPU where one is visible).
    const cpu = await page.getByTestId('device-CPU').innerText()
    check(/B .*\/|B free of/.test(cpu), `the models page shows the CPU device as "${cpu}"`)
    await shot(page, '11-admin-models')
    await page.goto(`${base}/admin/usage`)
    await page.getByTestId('usage-table').locator('tbody tr').first().waitFor()
    await shot(page, '12-admin-usage')
    // The admin made no model calls: once the usage answer is in, the
    // dashboard shows its empty state (the table shows only while loading).
    const usageLoaded = page.waitForResponse((r) => r.url().includes('/api/v1/auth/usage'))
    await page.goto(`${base}/`)
    await usageLoaded
    await page.getByTestId('dashboard-empty').or(page.getByTestId('recent-calls')).waitFor()
    await shot(page, '13-dashboard-admin')
    await logout(page)
    await login(page, base, user, password)
    const now = await balanceShown(page)
    check(now === userBalance + 500, `user balance ${now}, expected ${userBalance + 500}`)
    await page.getByTestId('recent-calls').waitFor()
    await shot(page, '14-dashboard-user')
  })

  await step('an admin downloads a model by its Hugging Face name, sees the progress, and chats with it', async () => {
    await logout(page)
    await login(page, base, 'admin', adminPassword)
    await page.goto(`${base}/admin/models`)
    await page.getByTestId('models-table').getByText('tiny').first().waitFor()
    await page.getByTestId('models-pull').click()
    await inputOf(page, 'pull-source').fill('e2e/Tiny-GGUF')
    await page.getByTestId('pull-find').click()
    await page.getByTestId('pull-quant-Q8_0').waitFor()
    const chosen = page.getByTestId('pull-quant-Q4_K_M').locator('input')
    check(await chosen.isChecked(), 'Q4_K_M, the default quantisation, is not the one chosen')
    await page.getByTestId('pull-start').click()
    await page.locator('[data-testid=pull-status][data-state=downloading]').waitFor({ timeout: 20_000 })
    await page.getByTestId('pull-cancel').waitFor()
    await shot(page, '11b-model-pull')
    await page.locator('[data-testid=pull-status][data-state=done]').waitFor({ timeout: 120_000 })
    const done = await page.getByTestId('pull-status').innerText()
    check(done.includes('tiny-q4_k_m'), `the finished download says "${done}"`)
    await page.getByTestId('pull-close').click()
    await page.getByTestId('models-table').getByText('tiny-q4_k_m').waitFor({ timeout: 20_000 })
    // The new model answers in the chat page.
    await page.goto(`${base}/chat`)
    await page.getByTestId('model-select').click()
    await page.locator('.el-select-dropdown__item', { hasText: 'tiny-q4_k_m' }).click()
    await inputOf(page, 'max-tokens').fill('8')
    await inputOf(page, 'chat-input').fill('Hello, new model')
    await page.getByTestId('chat-send').click()
    const reply = page.getByTestId('assistant-message').last()
    await reply.getByTestId('reply-cost').waitFor({ timeout: 180_000 })
    const stored = await storedConversation(page, base)
    const answered = stored?.messages?.at(-1)?.model
    check(answered === 'tiny-q4_k_m', `the reply came from ${answered}`)
    await logout(page)
    await login(page, base, user, password)
  })

  await step('a user changes the password; the old one stops working, the new one works', async () => {
    await page.goto(`${base}/`)
    await page.getByTestId('dashboard').waitFor()
    const oldToken = await page.evaluate(() => localStorage.getItem('llmd.token'))
    await page.getByTestId('user-menu').click()
    await page.getByTestId('change-password').click()
    const dialog = page.getByTestId('change-password-dialog')
    await dialog.waitFor()
    check((await dialog.getAttribute('data-forced')) === 'false', 'the menu opened the forced dialog')
    // The client checks first: a confirmation that differs never reaches the server.
    await inputOf(page, 'pw-current').fill(password)
    await inputOf(page, 'pw-new').fill('e2e-password-2')
    await inputOf(page, 'pw-confirm').fill('e2e-password-3')
    await page.getByTestId('pw-submit').click()
    await dialog.locator('.el-form-item__error').first().waitFor()
    // A wrong current password: the server's error, in the UI's words, and the session stays.
    await changePasswordIn(page, 'not-the-password', 'e2e-password-2')
    const err = page.getByTestId('pw-error')
    await err.waitFor()
    check(/当前密码错误|current password is wrong/i.test(await err.innerText()), `error: ${await err.innerText()}`)
    check(!page.url().includes('/login'), 'a wrong current password ended the session')
    await shot(page, '15-change-password-error')
    await changePasswordIn(page, password, 'e2e-password-2')
    await dialog.waitFor({ state: 'hidden' })
    const newToken = await page.evaluate(() => localStorage.getItem('llmd.token'))
    check(newToken && newToken !== oldToken, 'the session token was not replaced')
    const stale = await apiCall(base, 'GET', '/api/v1/auth/profile', { token: oldToken })
    check(stale.status === 401, `the old token still works: ${stale.status}`)
    // The page goes on with the new session.
    await page.reload()
    await page.getByTestId('dashboard').waitFor()
    check(!page.url().includes('/login'), 'logged out after the change')
    const old = await apiLogin(base, user, password)
    check(old.status === 401, `the old password still logs in: ${old.status}`)
    const fresh = await apiLogin(base, user, 'e2e-password-2')
    check(fresh.status === 200, `the new password does not log in: ${fresh.status}`)
    password = 'e2e-password-2'
  })

  const forcedUser = `${user}_f`
  await step('after an admin reset the user must choose a new password before going on', async () => {
    const reg = await apiCall(base, 'POST', '/api/v1/auth/register', {
      body: { username: forcedUser, password: 'e2e-forced-first', email: `${forcedUser}@example.com` },
    })
    check(reg.status === 201 || reg.status === 200, `register: ${reg.status} ${JSON.stringify(reg.body)}`)
    const admin = await apiLogin(base, 'admin', adminPassword)
    check(admin.status === 200, `admin login: ${admin.status}`)
    const reset = await apiCall(base, 'POST', `/api/v1/admin/users/${reg.body.user.id}/password`, {
      token: admin.body.token,
      body: {},
    })
    check(reset.status === 200, `reset: ${reset.status} ${JSON.stringify(reset.body)}`)
    check(typeof reset.body.password === 'string' && reset.body.password.length >= 8, 'no generated password')
    check(reset.body.user.must_change_password === true, 'must_change_password not set by the reset')
    const generated = reset.body.password

    await logout(page)
    await login(page, base, forcedUser, generated)
    await page.getByTestId('pw-forced-notice').waitFor()
    const dialog = page.getByTestId('change-password-dialog')
    check((await dialog.getAttribute('data-forced')) === 'true', 'the dialog is not in forced mode')
    // Neither Escape, nor a click outside, nor a close button gets rid of it.
    await page.keyboard.press('Escape')
    await page.mouse.click(5, 400)
    await page.waitForTimeout(500)
    check(await dialog.isVisible(), 'the forced dialog closed')
    check((await page.locator('.el-dialog:visible .el-dialog__headerbtn').count()) === 0, 'a close button is shown')
    await page.getByTestId('pw-logout').waitFor()
    await shot(page, '16-forced-password')
    await changePasswordIn(page, generated, 'e2e-forced-own-1')
    await dialog.waitFor({ state: 'hidden' })
    // The UI is usable: navigate by the menu, and a reload does not ask again.
    await page.getByTestId('nav-/keys').click()
    await page.getByTestId('key-create').waitFor()
    await page.reload()
    await page.getByTestId('key-create').waitFor()
    check(!(await dialog.isVisible()), 'the dialog is back after a reload')
    const token = await page.evaluate(() => localStorage.getItem('llmd.token'))
    const profile = await apiCall(base, 'GET', '/api/v1/auth/profile', { token })
    check(profile.status === 200, `profile: ${profile.status}`)
    check(profile.body.user.must_change_password === false, 'must_change_password still set')
    await logout(page)
  })

  await step('admin resets a password on the users page and sees the generated one once', async () => {
    await login(page, base, 'admin', adminPassword)
    await page.goto(`${base}/admin/users`)
    await inputOf(page, 'user-search').fill(forcedUser)
    await page.getByTestId('user-search-btn').click()
    const row = page.getByTestId('users-table').locator('tr', { hasText: forcedUser })
    await row.waitFor()
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=users-table] tbody tr').length === 1,
      null,
      { timeout: 10_000 },
    )
    await row.getByTestId('reset-password').click()
    await page.locator('.el-message-box .el-button--primary').click()
    const result = page.getByTestId('reset-password-result')
    await result.waitFor()
    const generated = (await page.getByTestId('reset-password-value').innerText()).trim()
    check(generated.length >= 8, `generated password "${generated}"`)
    await shot(page, '17-admin-reset-password')
    const r = await apiLogin(base, forcedUser, generated)
    check(r.status === 200, `the shown password does not log in: ${r.status}`)
    check(r.body.user.must_change_password === true, 'the reset user is not asked to change the password')
    const old = await apiLogin(base, forcedUser, 'e2e-forced-own-1')
    check(old.status === 401, `the replaced password still logs in: ${old.status}`)
    await page.getByTestId('reset-password-done').click()
    await result.waitFor({ state: 'hidden' })
    await logout(page)
    await login(page, base, user, password)
  })

  await step('phone width: menu in a drawer, pages usable', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(`${base}/chat`)
    await page.getByTestId('menu-toggle').click()
    await page.getByTestId('drawer-/convert').click()
    await page.getByTestId('convert').waitFor()
    await shot(page, '18-phone-convert')
    await page.goto(`${base}/chat`)
    await page.getByTestId('chat-input').waitFor()
    await shot(page, '19-phone-chat')
    await page.setViewportSize({ width: 1366, height: 850 })
  })

  await step('on a fresh browser the user finds the conversation by search; math renders, HTML stays text', async () => {
    const fresh = await browser.newContext({ viewport: { width: 1366, height: 850 }, locale: 'en-US' })
    const p = await fresh.newPage()
    try {
      await login(p, base, user, password)
      const token = await p.evaluate(() => localStorage.getItem('llmd.token'))
      const math = 'Inline $x^2+1$, paren \\(\\frac{1}{2}\\), display $$\\sum_{i=1}^n i$$ and bracket \\[\\int_0^1 x\\,dx\\]'
      const hostile = '<img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script>'
      const file = {
        format: 'llmd.conversations',
        version: 1,
        conversations: [
          {
            title: 'Imported math',
            model: 'tiny',
            system: '',
            messages: [
              { role: 'user', content: hostile },
              { role: 'assistant', content: math, finish_reason: 'stop', tokens_consumed: 0 },
              { role: 'user', content: 'And in code?' },
              { role: 'assistant', content: '```js\nconst half = 1 / 2\n```', finish_reason: 'stop' },
            ],
          },
        ],
      }
      const imported = await apiCall(base, 'POST', '/api/v1/conversations/import', { token, body: file })
      check(imported.status === 201, `import answered ${imported.status}`)
      await p.goto(`${base}/chat`)
      await inputOf(p, 'conv-search').fill('who are you')
      await p.waitForFunction(
        () => document.querySelectorAll('[data-testid=conv-item]').length === 1,
        null,
        { timeout: 10_000 },
      )
      await p.getByTestId('conv-item').first().click()
      await p.getByTestId('user-message').first().getByText('Hello, who are you?').waitFor()
      await inputOf(p, 'conv-search').fill('Imported math')
      await p.locator('[data-testid=conv-item]', { hasText: 'Imported math' }).waitFor()
      await p.locator('[data-testid=conv-item]', { hasText: 'Imported math' }).click()
      const answer = p.getByTestId('assistant-message').first()
      await answer.locator('.katex').first().waitFor()
      const formulas = await answer.locator('.katex').count()
      check(formulas === 4, `expected 4 KaTeX formulas, found ${formulas}`)
      const question = p.getByTestId('user-message').first()
      await question.getByText('<img src=x onerror=').waitFor()
      const code = p.getByTestId('assistant-message').last()
      await code.locator('.hljs-keyword').first().waitFor()
      check((await code.getByTestId('code-copy').count()) === 1, 'no copy button on the code block')
      check((await p.locator('[data-testid=messages] img').count()) === 0, 'an <img> from a message was rendered')
      check((await p.evaluate(() => window.__pwned)) === undefined, 'a message ran script')
      await p.screenshot({ path: path.join(outDir, '14-chat-math.png') })
    } finally {
      await fresh.close()
    }
  })

  await step('a teacher makes a class with a weekly allowance and codes; a student redeems one', async () => {
    const teacher = 'teacher1'
    const teacherPassword = 'e2e-teacher-password'
    const student = `${user}_s`
    const className = 'e2e class'
    const reg = await apiCall(base, 'POST', '/api/v1/auth/register', {
      body: { username: teacher, password: teacherPassword, email: `${teacher}@example.com` },
    })
    check(reg.status === 201 || reg.status === 200, `register ${teacher}: ${reg.status} ${JSON.stringify(reg.body)}`)
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 850 }, locale: 'en-US' })
    const p = await ctx.newPage()
    p.on('pageerror', (e) => consoleErrors.push(String(e)))
    try {
      // An admin makes teacher1 a teacher with the role menu of the users page.
      await login(p, base, 'admin', adminPassword)
      await p.goto(`${base}/admin/users`)
      await inputOf(p, 'user-search').fill(teacher)
      await p.getByTestId('user-search-btn').click()
      await p.waitForFunction(
        () => document.querySelectorAll('[data-testid=users-table] tbody tr').length === 1,
        null,
        { timeout: 10_000 },
      )
      const userRow = p.getByTestId('users-table').locator('tr', { hasText: teacher })
      await userRow.getByTestId('user-role').click()
      await p.locator('[data-testid=role-teacher]:visible').click()
      await p.locator('.el-message-box .el-button--primary').click()
      await userRow.getByTestId('user-role-tag').getByText(/教师|Teacher/).waitFor()
      const asTeacher = await apiLogin(base, teacher, teacherPassword)
      check(asTeacher.body?.user?.role === 'teacher', `${teacher}'s role is ${asTeacher.body?.user?.role}`)
      await logout(p)

      // The teacher makes the class on the Groups page: a weekly allowance of 300.
      await login(p, base, teacher, teacherPassword)
      check((await p.getByTestId('nav-/admin/users').count()) === 0, 'admin pages offered to a teacher')
      await p.getByTestId('nav-/groups').click()
      await p.getByTestId('groups').waitFor()
      await p.getByTestId('group-create').click()
      await inputOf(p, 'group-name').fill(className)
      await p.getByTestId('group-period-week').click()
      await inputOf(p, 'group-allowance-amount').fill('300')
      await p.getByTestId('group-save').click()
      const groupRow = p.getByTestId('groups-table').locator('tr', { hasText: className })
      await groupRow.waitFor()
      const allowance = await groupRow.getByTestId('group-allowance').innerText()
      check(allowance.includes('300'), `the groups table shows the allowance as "${allowance}"`)
      const teacherToken = await p.evaluate(() => localStorage.getItem('llmd.token'))
      const listed = await apiCall(base, 'GET', '/api/v1/groups', { token: teacherToken })
      check(listed.status === 200, `GET /api/v1/groups: ${listed.status}`)
      const group = listed.body.groups.find((g) => g.name === className)
      check(
        group?.allowance?.amount === 300 && group.allowance.period === 'week',
        `the stored group: ${JSON.stringify(group)}`,
      )

      // Codes a teacher makes are paid from the group's pool, which an admin fills.
      const admin = await apiLogin(base, 'admin', adminPassword)
      const topUp = await apiCall(base, 'POST', `/api/v1/admin/groups/${group.id}/pool`, {
        token: admin.body.token,
        body: { amount: 1000, reason: 'e2e class pool' },
      })
      check(topUp.status === 200 && topUp.body.pool === 1000, `pool top-up: ${topUp.status} ${JSON.stringify(topUp.body)}`)
      await groupRow.getByTestId('group-open').click()
      await p.waitForURL(new RegExp(`/groups/${group.id}$`))
      await p.locator('[data-testid=group-pool][data-pool="1000"]').waitFor()
      await p.getByTestId('codes-create').click()
      await inputOf(p, 'codes-count').fill('2')
      await inputOf(p, 'codes-amount').fill('50')
      await p.getByTestId('codes-submit').click()
      await p.getByTestId('codes-result').waitFor()
      const codes = await p.getByTestId('new-code').allInnerTexts()
      check(codes.length === 2, `${codes.length} codes shown, expected 2`)
      const code = codes[0].trim()
      check(code.length >= 8, `the code shown is "${code}"`)
      await shot(p, '21-group-codes')
      await p.getByTestId('codes-done').click()
      await p.locator('[data-testid=group-pool][data-pool="900"]').waitFor()
      await p.getByTestId('codes-table').locator('tbody tr').nth(1).waitFor()
      await logout(p)

      // A student registers, redeems a code in the dashboard's dialog: 50 tokens and the class.
      await p.locator('#tab-register').click()
      await inputOf(p, 'username').fill(student)
      await inputOf(p, 'password').fill('e2e-student-password')
      await inputOf(p, 'email').fill(`${student}@example.com`)
      await p.getByTestId('auth-submit').click()
      await p.getByTestId('dashboard').waitFor()
      const before = await balanceShown(p)
      check(before === 100000, `a new student's balance is ${before}`)
      await p.getByTestId('dash-redeem').click()
      await inputOf(p, 'redeem-code').fill(code)
      await p.getByTestId('redeem-submit').click()
      const result = p.getByTestId('redeem-result')
      await result.waitFor()
      check((await result.getAttribute('data-added')) === '50', `tokens added: ${await result.getAttribute('data-added')}`)
      check((await p.getByTestId('redeem-group').innerText()).includes(className), 'the joined class is not named')
      await shot(p, '22-redeem')
      await p.getByTestId('redeem-done').click()
      await result.waitFor({ state: 'hidden' })
      // The code's 50, and this week's allowance of the class just joined.
      const after = before + 50 + 300
      await p.waitForFunction(
        (n) => Number(document.querySelector('[data-testid=balance]')?.innerText.replace(/[^0-9]/g, '')) === n,
        after,
        { timeout: 10_000 },
      )
      const dash = Number((await p.getByTestId('dash-balance').innerText()).replace(/[^0-9]/g, ''))
      check(dash === after, `the dashboard shows a balance of ${dash}, expected ${after}`)
      // The class and its weekly allowance, untouched, on the dashboard (after a reload too).
      for (const reload of [false, true]) {
        if (reload) await p.reload()
        const mine = p.locator(`[data-testid=my-group][data-group="${className}"]`)
        await mine.waitFor()
        const attrs = await mine.evaluate((el) => [el.dataset.allowance, el.dataset.period, el.dataset.left])
        check(attrs.join(' ') === '300 week 300', `the dashboard's allowance (amount period left): ${attrs.join(' ')}`)
        check((await mine.getByTestId('my-group-left').innerText()).trim() === '300', 'the allowance left is not 300')
        const text = await mine.getByTestId('my-group-allowance').innerText()
        check(/300 \/ (周|week)/.test(text), `the allowance reads "${text}"`)
        const resets = (await mine.getByTestId('my-group-resets').innerText()).trim()
        check(/^\d{4}-\d\d-\d\d \d\d:\d\d$/.test(resets), `the allowance resets at "${resets}"`)
      }
      check((await balanceShown(p)) === after, 'the balance changed after a reload')
      await shot(p, '23-dashboard-groups')
      // A code works once: the second try is refused, in the UI's words.
      await p.getByTestId('dash-redeem').click()
      await inputOf(p, 'redeem-code').fill(code)
      await p.getByTestId('redeem-submit').click()
      const refused = p.getByTestId('redeem-error')
      await refused.waitFor()
      check((await refused.getAttribute('data-code')) === 'code_used', `refused with ${await refused.getAttribute('data-code')}`)
      check(/已被使用|already been used/.test(await refused.innerText()), `the refusal reads "${await refused.innerText()}"`)
      // The teacher sees the student among the members, with the whole allowance left.
      const members = await apiCall(base, 'GET', `/api/v1/groups/${group.id}/members`, { token: teacherToken })
      const member = members.body?.members?.find((m) => m.username === student)
      check(member?.allowance_left === 300, `the student as a member: ${JSON.stringify(member)}`)
    } finally {
      await ctx.close()
    }
  })

  await step('Chinese is the default language', async () => {
    const zh = await browser.newContext({ viewport: { width: 1366, height: 850 } })
    const p = await zh.newPage()
    await p.goto(`${base}/login`)
    await p.getByText('登录').first().waitFor()
    await p.screenshot({ path: path.join(outDir, '20-login-zh.png') })
    await zh.close()
  })

  await step('logout', async () => {
    await logout(page)
    await page.goto(`${base}/keys`)
    await page.waitForURL(/\/login/)
  })

  await step('no uncaught page errors', async () => {
    const relevant = consoleErrors.filter((e) => !/401|Unauthorized|409|Conflict|400|Bad Request/.test(e))
    check(relevant.length === 0, relevant.join(' | '))
  })
}

try {
  await main()
} catch (e) {
  results.push(['setup', false])
  console.log(`FAIL setup: ${e?.stack ?? e}`)
} finally {
  await browser?.close().catch(() => {})
  if (server) {
    server.kill('SIGTERM')
    await new Promise((r) => {
      const t = setTimeout(() => {
        server.kill('SIGKILL')
        r()
      }, 15_000)
      server.on('exit', () => {
        clearTimeout(t)
        r()
      })
    })
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
}
const passed = results.filter(([, ok]) => ok).length
const failed = results.length - passed
console.log(`screenshots and serve.log in ${outDir}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
