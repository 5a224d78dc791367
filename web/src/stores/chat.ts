import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { ApiError } from '@/api/client'
import { chatRequestBody, conversationApi, streamChat, type ExportFormat } from '@/api/services'
import type {
  ChatStreamData,
  ChatTurn,
  Conversation,
  ConversationMessage,
  ConversationSummary,
} from '@/api/types'

/** Where older versions of this page kept conversation text in the browser. */
const kLegacyKey = 'llmd.conversations'
const kPageSize = 30

/** Removes the conversations older versions of the page left in localStorage, unread. */
export function dropLegacyConversations(): void {
  try {
    globalThis.localStorage?.removeItem(kLegacyKey)
  } catch {
    /* storage disabled: nothing was kept there either */
  }
}

// Run at app load (the auth store imports this module), not only once the chat page is opened:
// a user who never opens the chat again must not keep the old text on a shared computer.
dropLegacyConversations()

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404
}

function isAbort(e: unknown): boolean {
  return (
    (e instanceof DOMException && e.name === 'AbortError') ||
    (e instanceof ApiError && e.code === 'cancelled')
  )
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

let localIds = 0

/** A message shown while its turn streams; negative ids mark it as not stored yet. */
function placeholder(role: ConversationMessage['role'], content: string, model: string): ConversationMessage {
  localIds -= 1
  return {
    id: localIds,
    role,
    content,
    model,
    usage: null,
    tokens_consumed: 0,
    finish_reason: role === 'assistant' ? 'pending' : null,
    created_at: Math.floor(Date.now() / 1000),
  }
}

export function isStored(m: ConversationMessage): boolean {
  return m.id > 0
}

export interface TurnOptions {
  model: string
  maxTokens: number
  signal: AbortSignal
  /** Called on every stream event (the first one means the model is up). */
  onEvent?: () => void
}

/** How a chat turn ended, as far as the stream told; the stored conversation is reloaded anyway. */
export interface TurnOutcome {
  /** The final `done` event, if it came. */
  done: ChatStreamData | null
  /** An error the server reported (before or during the stream). */
  error: string | null
  aborted: boolean
}

/**
 * The signed-in user's chat conversations. The server keeps them; this store holds the sidebar
 * list and the open conversation in memory only, so the browser stores no conversation text.
 */
export const useChatStore = defineStore('chat', () => {
  const items = ref<ConversationSummary[]>([])
  const nextCursor = ref<string | null>(null)
  const query = ref('')
  const listLoading = ref(false)
  const currentId = ref<string | null>(null)
  const current = ref<Conversation | null>(null)
  // Bumped to make responses of superseded requests (and of a logged-out user) be dropped.
  let epoch = 0
  let listSeq = 0
  let openSeq = 0

  /** True while the selected conversation's messages are still being fetched. */
  const opening = computed(() => currentId.value !== null && current.value?.id !== currentId.value)

  async function refreshList(): Promise<void> {
    const seq = ++listSeq
    listLoading.value = true
    try {
      const page = await conversationApi.list({ q: query.value, limit: kPageSize })
      if (seq !== listSeq) return
      items.value = page.items
      nextCursor.value = page.next_cursor
    } finally {
      if (seq === listSeq) listLoading.value = false
    }
  }

  async function loadMore(): Promise<void> {
    if (!nextCursor.value || listLoading.value) return
    const seq = listSeq // a refresh meanwhile makes this page stale
    listLoading.value = true
    try {
      const page = await conversationApi.list({ q: query.value, limit: kPageSize, cursor: nextCursor.value })
      if (seq !== listSeq) return
      const known = new Set(items.value.map((c) => c.id))
      items.value.push(...page.items.filter((c) => !known.has(c.id)))
      nextCursor.value = page.next_cursor
    } finally {
      if (seq === listSeq) listLoading.value = false
    }
  }

  function search(q: string): Promise<void> {
    query.value = q
    return refreshList()
  }

  /** Puts the conversation's summary where the newest-first list has it now. */
  function syncSummary(c: ConversationSummary): void {
    const summary: ConversationSummary = {
      id: c.id,
      title: c.title,
      model: c.model,
      updated_at: c.updated_at,
      message_count: c.message_count,
    }
    const had = items.value.some((s) => s.id === c.id)
    const rest = items.value.filter((s) => s.id !== c.id)
    const at = rest.findIndex((s) => s.updated_at <= summary.updated_at)
    // Without a search, a conversation newer than the last loaded page belongs in the list; with
    // one, only the server knows whether it matches, so only entries already listed move.
    if (!had && (query.value || (at < 0 && nextCursor.value))) return
    rest.splice(at < 0 ? rest.length : at, 0, summary)
    items.value = rest
  }

  /** Forgets a conversation the server no longer has (deleted in another tab). */
  function dropMissing(id: string): void {
    items.value = items.value.filter((c) => c.id !== id)
    if (currentId.value === id) startNew()
    void refreshList().catch(() => {})
  }

  /** Shows a conversation. Rejects with ApiError (404: deleted elsewhere, already dropped). */
  async function open(id: string): Promise<void> {
    const seq = ++openSeq
    currentId.value = id
    if (current.value?.id !== id) current.value = null
    try {
      const c = await conversationApi.get(id)
      if (seq !== openSeq) return
      current.value = c
      syncSummary(c)
    } catch (e) {
      if (seq !== openSeq) return
      if (isNotFound(e)) dropMissing(id)
      throw e
    }
  }

  /** Re-reads a conversation from the server, the truth after a turn; errors other than 404 are ignored. */
  async function refreshOne(id: string): Promise<void> {
    const at = epoch
    try {
      const c = await conversationApi.get(id)
      if (at !== epoch) return
      syncSummary(c)
      if (currentId.value === id) current.value = c
    } catch (e) {
      if (at === epoch && isNotFound(e)) dropMissing(id)
    }
  }

  function startNew(): void {
    openSeq++
    currentId.value = null
    current.value = null
  }

  async function ensureConversation(model: string): Promise<Conversation> {
    if (current.value) return current.value
    const created = await conversationApi.create({ model })
    openSeq++
    currentId.value = created.id
    current.value = { ...created, messages: created.messages ?? [] }
    syncSummary(created)
    return current.value
  }

  async function rename(id: string, title: string): Promise<void> {
    try {
      const s = await conversationApi.update(id, { title })
      items.value = items.value.map((c) => (c.id === id ? s : c))
      if (current.value?.id === id) current.value.title = s.title
    } catch (e) {
      if (isNotFound(e)) dropMissing(id)
      throw e
    }
  }

  async function remove(id: string): Promise<void> {
    try {
      await conversationApi.remove(id)
    } catch (e) {
      if (!isNotFound(e)) throw e // already gone elsewhere: the same outcome
    }
    items.value = items.value.filter((c) => c.id !== id)
    if (currentId.value === id) startNew()
  }

  function exportFile(id: string, format: ExportFormat) {
    return conversationApi.exportOne(id, format)
  }

  /** Imports an export file; resolves to the id of the first conversation it created. */
  async function importJson(json: string): Promise<string> {
    const { id } = await conversationApi.import(json)
    await refreshList()
    return id
  }

  /** Shows the turn's messages until the server's stored copy replaces them; returns the reply. */
  function showTurn(c: Conversation, turn: ChatTurn, model: string): ConversationMessage {
    if (turn.kind === 'regenerate') {
      if (c.messages[c.messages.length - 1]?.role === 'assistant') c.messages.pop()
    } else {
      if (turn.kind === 'edit') {
        const at = c.messages.findIndex((m) => m.id === turn.messageId)
        if (at >= 0) c.messages.splice(at)
      }
      c.messages.push(placeholder('user', turn.message, model))
    }
    c.messages.push(placeholder('assistant', '', model))
    return c.messages[c.messages.length - 1] // the reactive copy, updated as the stream goes
  }

  function applyEvent(
    reply: ConversationMessage,
    data: ChatStreamData,
    isError: boolean,
    out: TurnOutcome,
  ): void {
    if (isError || data.error) {
      out.error = data.error?.message ?? data.error?.code ?? 'error'
      reply.finish_reason = 'error'
      return
    }
    if (data.reasoning_delta) reply.reasoning_content = (reply.reasoning_content ?? '') + data.reasoning_delta
    if (data.delta) reply.content += data.delta
    if (data.done) {
      out.done = data
      reply.tokens_consumed = data.tokens_consumed ?? 0
      reply.finish_reason = 'stop'
    }
  }

  /**
   * Runs one chat turn in the open conversation (created first for a new chat), streaming the
   * reply into it, then reloads the conversation and its list entry from the server whatever
   * happened. Rejects only when a new conversation cannot be created.
   */
  async function runTurn(turn: ChatTurn, opts: TurnOptions): Promise<TurnOutcome> {
    const c = await ensureConversation(opts.model)
    const reply = showTurn(c, turn, opts.model)
    const out: TurnOutcome = { done: null, error: null, aborted: false }
    try {
      await streamChat(
        opts.model,
        chatRequestBody(c.id, turn, opts.maxTokens),
        opts.signal,
        (data, isError) => {
          opts.onEvent?.()
          applyEvent(reply, data, isError, out)
        },
      )
    } catch (e) {
      if (isAbort(e)) out.aborted = true
      else out.error = errorText(e)
    } finally {
      if (reply.finish_reason === 'pending') reply.finish_reason = out.aborted ? 'stopped' : 'error'
    }
    await refreshOne(c.id)
    return out
  }

  /** Drops every conversation from memory and the legacy browser copy (at logout). */
  function forget(): void {
    epoch++
    listSeq++
    startNew()
    items.value = []
    nextCursor.value = null
    query.value = ''
    listLoading.value = false
    dropLegacyConversations()
  }

  return {
    items,
    nextCursor,
    query,
    listLoading,
    currentId,
    current,
    opening,
    refreshList,
    loadMore,
    search,
    open,
    refreshOne,
    startNew,
    rename,
    remove,
    exportFile,
    importJson,
    runTurn,
    forget,
  }
})
