import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

export interface ChatMessage {
  role: 'user' | 'assistant'
  content: string
  /** Tokens charged for this reply (assistant messages). */
  cost?: number
  error?: string
  pending?: boolean
}

export interface Conversation {
  id: string
  title: string
  model: string
  messages: ChatMessage[]
  updated: number
}

const kKey = 'llmd.conversations'
const kMaxConversations = 50

function load(): Conversation[] {
  try {
    const raw = globalThis.localStorage?.getItem(kKey)
    const list = raw ? (JSON.parse(raw) as Conversation[]) : []
    return Array.isArray(list) ? list : []
  } catch {
    return []
  }
}

/**
 * Conversations, kept in the browser (localStorage) for the signed-in user only, newest first: any
 * logout, an expired session included, forgets them, so the next person on a shared computer finds
 * none.
 */
export const useChatStore = defineStore('chat', () => {
  const conversations = ref<Conversation[]>(load())
  const currentId = ref<string | null>(conversations.value[0]?.id ?? null)

  watch(
    conversations,
    (list) => {
      if (list.length === 0) {
        globalThis.localStorage?.removeItem(kKey)
        return
      }
      // Never persist a half-streamed reply's pending flag.
      const clean = list.map((c) => ({ ...c, messages: c.messages.map((m) => ({ ...m, pending: false })) }))
      globalThis.localStorage?.setItem(kKey, JSON.stringify(clean))
    },
    { deep: true },
  )

  function current(): Conversation | undefined {
    return conversations.value.find((c) => c.id === currentId.value)
  }

  function create(model: string): Conversation {
    const c: Conversation = {
      id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      title: '',
      model,
      messages: [],
      updated: Date.now(),
    }
    conversations.value.unshift(c)
    conversations.value.splice(kMaxConversations)
    currentId.value = c.id
    return conversations.value[0]
  }

  function select(id: string): void {
    currentId.value = id
  }

  function remove(id: string): void {
    conversations.value = conversations.value.filter((c) => c.id !== id)
    if (currentId.value === id) currentId.value = conversations.value[0]?.id ?? null
  }

  function clear(): void {
    conversations.value = []
    currentId.value = null
  }

  /** Drops every conversation from this browser (at logout: a shared computer keeps none). */
  function forget(): void {
    clear()
    globalThis.localStorage?.removeItem(kKey)
  }

  /** Appends a message and returns the reactive copy, so streaming can update it in place. */
  function append(c: Conversation, m: ChatMessage): ChatMessage {
    c.messages.push(m)
    c.updated = Date.now()
    if (!c.title && m.role === 'user') c.title = m.content.slice(0, 40)
    return c.messages[c.messages.length - 1]
  }

  /** The history the API takes: finished messages before the newest user message. */
  function history(c: Conversation): { role: 'user' | 'assistant'; content: string }[] {
    return c.messages
      .filter((m) => !m.error && !m.pending && m.content)
      .map((m) => ({ role: m.role, content: m.content }))
  }

  return { conversations, currentId, current, create, select, remove, clear, forget, append, history }
})
