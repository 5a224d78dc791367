import { toApiError } from './client'

export interface SseEvent {
  event: string
  data: string
}

/** Splits an SSE byte stream into events (`event:` + `data:` lines, blank line ends one). */
export class SseParser {
  private buffer = ''

  push(chunk: string): SseEvent[] {
    this.buffer += chunk.replace(/\r\n/g, '\n')
    const out: SseEvent[] = []
    let end = this.buffer.indexOf('\n\n')
    while (end >= 0) {
      const block = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      let event = 'message'
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') event = value
        else if (field === 'data') data.push(value)
      }
      if (data.length > 0) out.push({ event, data: data.join('\n') })
      end = this.buffer.indexOf('\n\n')
    }
    return out
  }
}

export interface StreamOptions {
  method?: 'GET' | 'POST'
  body?: unknown
  token: string | null
  signal?: AbortSignal
  onEvent: (e: SseEvent) => void
  onUnauthorized?: () => void
}

/**
 * Reads server-sent events with fetch() so the Authorization header can be sent
 * (EventSource cannot). Resolves when the stream ends; rejects with ApiError for
 * an error reply before the stream starts.
 */
export async function streamEvents(url: string, opts: StreamOptions): Promise<void> {
  const headers: Record<string, string> = { Accept: 'text/event-stream' }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(url, {
    method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  })
  if (!res.ok || !res.body) {
    let body: unknown = null
    try {
      body = await res.json()
    } catch {
      /* not JSON */
    }
    if (res.status === 401 && opts.token) opts.onUnauthorized?.()
    throw toApiError(res.status, body)
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  const parser = new SseParser()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    for (const e of parser.push(value)) opts.onEvent(e)
  }
}
