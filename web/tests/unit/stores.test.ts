import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { useAuthStore } from '@/stores/auth'
import { dropLegacyConversations, useChatStore } from '@/stores/chat'
import { chatRequestBody } from '@/api/services'
import { ApiError } from '@/api/client'
import { guard } from '@/router'
import type { Api } from '@/api'
import type { ChatStreamData, Conversation, User } from '@/api/types'
import type { RouteLocationNormalized } from 'vue-router'

const alice: User = {
  id: 2,
  username: 'alice',
  email: 'a@example.com',
  role: 'user',
  tokens: 1000,
  disabled: false,
  created_at: 1,
}

function route(path: string, meta: Record<string, unknown> = {}, name?: string): RouteLocationNormalized {
  return { path, fullPath: path, meta, name } as unknown as RouteLocationNormalized
}

/** The server the chat store talks to, in memory (the real one is tested in tests/e2e). */
const server = vi.hoisted(() => ({
  conversations: new Map<string, Conversation>(),
  chatBodies: [] as object[],
}))

function conversation(id: string, text: string): Conversation {
  return {
    id,
    title: text,
    model: 'tiny',
    system: '',
    created_at: 1,
    updated_at: 1,
    message_count: 1,
    messages: [
      {
        id: 1,
        role: 'user',
        content: text,
        model: 'tiny',
        usage: null,
        tokens_consumed: 0,
        finish_reason: null,
        created_at: 1,
      },
    ],
  }
}

vi.mock('@/api/services', async (original) => {
  const real = await original<typeof import('@/api/services')>()
  const notFound = () => new ApiError(404, 'conversation_not_found', 'no such conversation')
  const summary = (c: Conversation) => ({
    id: c.id,
    title: c.title,
    model: c.model,
    updated_at: c.updated_at,
    message_count: c.messages.length,
  })
  return {
    ...real,
    conversationApi: {
      list: async () => ({ items: [...server.conversations.values()].map(summary), next_cursor: null }),
      create: async (body: { model?: string }) => {
        const c: Conversation = {
          ...conversation('new1', ''),
          title: '',
          model: body.model ?? '',
          messages: [],
        }
        server.conversations.set(c.id, c)
        return structuredClone(c)
      },
      get: async (id: string) => {
        const c = server.conversations.get(id)
        if (!c) throw notFound()
        return structuredClone(c)
      },
    },
    streamChat: async (
      _model: string,
      body: { conversation_id: string; message: string },
      _signal: AbortSignal,
      onData: (d: ChatStreamData, isError: boolean) => void,
    ) => {
      server.chatBodies.push(body)
      const c = server.conversations.get(body.conversation_id)!
      c.messages.push(
        {
          id: 1,
          role: 'user',
          content: body.message,
          model: 'tiny',
          usage: null,
          tokens_consumed: 0,
          finish_reason: null,
          created_at: 2,
        },
        {
          id: 2,
          role: 'assistant',
          content: '4',
          model: 'tiny',
          usage: null,
          tokens_consumed: 3,
          finish_reason: 'stop',
          created_at: 2,
        },
      )
      onData({ delta: '4' }, false)
      onData({ done: true, tokens_consumed: 3 }, false)
    },
  }
})

/** Everything the page left in localStorage and sessionStorage. */
function browserStorage(): string {
  const all: string[] = []
  for (const s of [localStorage, sessionStorage]) {
    for (let i = 0; i < s.length; i++) all.push(`${s.key(i)}=${s.getItem(s.key(i)!)}`)
  }
  return all.join('\n')
}

beforeEach(() => {
  server.conversations.clear()
  server.chatBodies.length = 0
  localStorage.clear()
  sessionStorage.clear()
  setActivePinia(createPinia())
})

describe('auth store', () => {
  it('keeps the session in localStorage and restores it', async () => {
    const api = { login: vi.fn().mockResolvedValue({ token: 'jwt', user: alice }) } as unknown as Api
    const auth = useAuthStore()
    await auth.login(api, 'alice', 'pw')
    expect(auth.loggedIn).toBe(true)
    expect(auth.balance).toBe(1000)
    setActivePinia(createPinia())
    const again = useAuthStore()
    expect(again.token).toBe('jwt')
    expect(again.user?.username).toBe('alice')
  })

  it('updates the balance from a paid call and clears everything on logout', () => {
    const auth = useAuthStore()
    auth.setSession('jwt', alice)
    auth.setBalance(958)
    expect(auth.balance).toBe(958)
    auth.setBalance(null)
    expect(auth.balance).toBe(958)
    auth.logout(true)
    expect(auth.loggedIn).toBe(false)
    expect(auth.expired).toBe(true)
    expect(localStorage.getItem('llmd.token')).toBeNull()
  })

  it("forgets the user's conversations at any logout, so the next user of the browser sees none", async () => {
    const auth = useAuthStore()
    auth.setSession('jwt', alice)
    const chat = useChatStore()
    server.conversations.set('c1', conversation('c1', 'my secret essay'))
    await chat.refreshList()
    await chat.open('c1')
    expect(chat.current?.messages[0].content).toBe('my secret essay')
    expect(browserStorage()).not.toContain('my secret essay')
    auth.logout(true) // an expired session on a lab computer counts too
    await nextTick()
    expect(chat.items).toHaveLength(0)
    expect(chat.current).toBeNull()
    expect(chat.currentId).toBeNull()
    // A new page load for the next user finds nothing either.
    setActivePinia(createPinia())
    expect(useChatStore().items).toHaveLength(0)
  })

  it('does not log in when the API rejects', async () => {
    const api = { login: vi.fn().mockRejectedValue(new Error('wrong')) } as unknown as Api
    const auth = useAuthStore()
    await expect(auth.login(api, 'alice', 'bad')).rejects.toThrow('wrong')
    expect(auth.loggedIn).toBe(false)
  })
})

describe('router guard', () => {
  it('sends anonymous users to login, keeping the target', () => {
    expect(guard(route('/chat?x=1'))).toEqual({ name: 'login', query: { redirect: '/chat?x=1' } })
    expect(guard(route('/login', { public: true }, 'login'))).toBe(true)
  })

  it('keeps non-admins out of admin pages', () => {
    useAuthStore().setSession('jwt', alice)
    expect(guard(route('/admin/users', { admin: true }))).toEqual({ name: 'dashboard' })
    expect(guard(route('/chat'))).toBe(true)
    expect(guard(route('/login', { public: true }, 'login'))).toEqual({ name: 'dashboard' })
  })

  it('lets admins in', () => {
    useAuthStore().setSession('jwt', { ...alice, role: 'admin' })
    expect(guard(route('/admin/users', { admin: true }))).toBe(true)
  })
})

describe('chat store', () => {
  it('drops the old browser copy of conversations unread', () => {
    localStorage.setItem('llmd.conversations', JSON.stringify([{ id: 'x', messages: [{ content: 'old' }] }]))
    dropLegacyConversations()
    expect(localStorage.getItem('llmd.conversations')).toBeNull()
  })

  it('runs a turn through the server and keeps no text in the browser', async () => {
    const chat = useChatStore()
    const outcome = await chat.runTurn(
      { kind: 'send', message: 'what is 2+2?' },
      { model: 'tiny', maxTokens: 8, signal: new AbortController().signal },
    )
    expect(outcome.error).toBeNull()
    expect(outcome.done?.done).toBe(true)
    // The request carried only the conversation's id and the new message: no history.
    expect(server.chatBodies).toEqual([
      { conversation_id: 'new1', stream: true, max_tokens: 8, message: 'what is 2+2?' },
    ])
    // What is shown is the server's stored copy, reloaded after the stream.
    expect(chat.current?.messages.map((m) => [m.role, m.content, m.id])).toEqual([
      ['user', 'what is 2+2?', 1],
      ['assistant', '4', 2],
    ])
    expect(chat.items.map((c) => c.id)).toEqual(['new1'])
    expect(browserStorage()).not.toContain('2+2')
  })

  it('builds regenerate and edit requests that name what they replace', () => {
    expect(chatRequestBody('c', { kind: 'regenerate' }, 5)).toEqual({
      conversation_id: 'c',
      stream: true,
      max_tokens: 5,
      regenerate: true,
    })
    expect(chatRequestBody('c', { kind: 'edit', messageId: 7, message: 'fixed' }, 5)).toEqual({
      conversation_id: 'c',
      stream: true,
      max_tokens: 5,
      edit_message_id: 7,
      message: 'fixed',
    })
  })

  it('forgets a conversation deleted elsewhere when it is opened', async () => {
    const chat = useChatStore()
    server.conversations.set('gone', conversation('gone', 'x'))
    await chat.refreshList()
    server.conversations.delete('gone')
    await expect(chat.open('gone')).rejects.toMatchObject({ status: 404 })
    expect(chat.items).toHaveLength(0)
    expect(chat.currentId).toBeNull()
  })
})
