import type { AxiosInstance, AxiosResponse, AxiosResponseTransformer } from 'axios'
import { createClient } from './client'
import { makeApi } from './index'
import { streamEvents } from './sse'
import type {
  ChatStreamData,
  ChatTurn,
  Conversation,
  ConversationImport,
  ConversationPage,
  ConversationSummary,
} from './types'

/** Set by main.ts: what to do when the server says the session is no longer valid. */
let unauthorizedHandler: () => void = () => {}
let tokenSource: () => string | null = () => null

export function setSessionHooks(token: () => string | null, onUnauthorized: () => void): void {
  tokenSource = token
  unauthorizedHandler = onUnauthorized
}

export function currentToken(): string | null {
  return tokenSource()
}

export function notifyUnauthorized(): void {
  unauthorizedHandler()
}

export const http = createClient({ token: () => tokenSource(), onUnauthorized: () => unauthorizedHandler() })
export const api = makeApi(http)

/** A file the server sent as an attachment. */
export interface DownloadedFile {
  name: string
  blob: Blob
}

export type ExportFormat = 'md' | 'json'

/**
 * Keeps a download's text byte for byte, but parses an error reply so the client can read its
 * `{error:{code,message}}` (axios would leave it a string under responseType 'text').
 */
const rawTextUnlessError: AxiosResponseTransformer = (data: unknown, _headers, status) => {
  if (typeof data !== 'string' || status === undefined || status < 400) return data
  try {
    return JSON.parse(data) as unknown
  } catch {
    return data
  }
}

/** The file name of a Content-Disposition header (RFC 5987 `filename*` first), else the fallback. */
export function dispositionName(disposition: string, fallback: string): string {
  const extended = /filename\*\s*=\s*(?:UTF-8)?'[^']*'([^;]+)/i.exec(disposition)
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim().replace(/^"|"$/g, ''))
    } catch {
      /* malformed escape: fall through to the plain name */
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition)
  return plain?.[1].trim() || fallback
}

function toFile(r: AxiosResponse<string>, fallback: string): DownloadedFile {
  const type = String(r.headers['content-type'] ?? 'application/octet-stream')
  return {
    name: dispositionName(String(r.headers['content-disposition'] ?? ''), fallback),
    blob: new Blob([r.data], { type }),
  }
}

function listParams(q: ConversationQuery): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  if (q.q) out.q = q.q
  if (q.limit) out.limit = q.limit
  if (q.cursor) out.cursor = q.cursor
  return out
}

export interface ConversationQuery {
  q?: string
  limit?: number
  cursor?: string | null
}

/** Server-side chat conversations of the signed-in user (/api/v1/conversations). */
export function makeConversationApi(h: AxiosInstance) {
  const base = '/api/v1/conversations'
  const one = (id: string) => `${base}/${encodeURIComponent(id)}`
  const text = { responseType: 'text' as const, transformResponse: rawTextUnlessError }
  return {
    list: (q: ConversationQuery = {}) =>
      h.get<ConversationPage>(base, { params: listParams(q) }).then((r) => r.data),
    create: (body: { title?: string; model?: string; system?: string }) =>
      h.post<Conversation>(base, body).then((r) => r.data),
    get: (id: string) => h.get<Conversation>(one(id)).then((r) => r.data),
    update: (id: string, body: { title?: string; system?: string }) =>
      h.patch<ConversationSummary>(one(id), body).then((r) => r.data),
    remove: (id: string) => h.delete(one(id)).then(() => undefined),
    removeAll: () => h.delete<{ deleted: number }>(base).then((r) => r.data.deleted),
    exportOne: (id: string, format: ExportFormat) =>
      h
        .get<string>(`${one(id)}/export`, { ...text, params: { format } })
        .then((r) => toFile(r, `conversation-${id}.${format}`)),
    exportAll: () => h.get<string>(`${base}/export`, text).then((r) => toFile(r, 'conversations.json')),
    /** Sends an export file's JSON unchanged; resolves to the ids of the new conversations. */
    import: (json: string) =>
      h
        .post<ConversationImport>(`${base}/import`, json, { headers: { 'Content-Type': 'application/json' } })
        .then((r) => r.data),
  }
}

export const conversationApi = makeConversationApi(http)

/** The chat request body for one turn of a stored conversation: the server builds the history itself. */
export function chatRequestBody(conversationId: string, turn: ChatTurn, maxTokens: number): object {
  const common = { conversation_id: conversationId, stream: true, max_tokens: maxTokens }
  switch (turn.kind) {
    case 'send':
      return { ...common, message: turn.message }
    case 'regenerate':
      return { ...common, regenerate: true }
    case 'edit':
      return { ...common, edit_message_id: turn.messageId, message: turn.message }
  }
}

/**
 * Streams one chat turn of `model`; `onData` gets each event's data (`isError` for an `error`
 * event). Rejects with ApiError when the server refuses before streaming, or on abort.
 */
export async function streamChat(
  model: string,
  body: object,
  signal: AbortSignal,
  onData: (data: ChatStreamData, isError: boolean) => void,
): Promise<void> {
  await streamEvents(`/api/v1/models/${encodeURIComponent(model)}/chat`, {
    body,
    token: currentToken(),
    signal,
    onUnauthorized: notifyUnauthorized,
    onEvent: (e) => {
      let data: ChatStreamData
      try {
        data = JSON.parse(e.data) as ChatStreamData
      } catch {
        return // a keep-alive or a non-JSON marker carries nothing to show
      }
      onData(data, e.event === 'error')
    },
  })
}
