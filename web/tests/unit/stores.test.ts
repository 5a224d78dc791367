import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { useAuthStore } from '@/stores/auth'
import { useChatStore } from '@/stores/chat'
import { guard } from '@/router'
import type { Api } from '@/api'
import type { User } from '@/api/types'
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

beforeEach(() => {
  localStorage.clear()
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
    chat.append(chat.create('m'), { role: 'user', content: 'my secret essay' })
    await nextTick()
    expect(localStorage.getItem('llmd.conversations')).toContain('my secret essay')
    auth.logout(true) // an expired session on a lab computer counts too
    await nextTick()
    expect(chat.conversations).toHaveLength(0)
    expect(chat.current()).toBeUndefined()
    expect(localStorage.getItem('llmd.conversations')).toBeNull()
    // A new page load for the next user finds nothing either.
    setActivePinia(createPinia())
    expect(useChatStore().conversations).toHaveLength(0)
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
  it('keeps conversations in the browser and builds the history from finished messages', async () => {
    const chat = useChatStore()
    const c = chat.create('tiny')
    chat.append(c, { role: 'user', content: 'hello there' })
    const reply = chat.append(c, { role: 'assistant', content: '', pending: true })
    reply.content = 'hi'
    expect(chat.history(c)).toEqual([{ role: 'user', content: 'hello there' }])
    reply.pending = false
    chat.append(c, { role: 'assistant', content: 'oops', error: 'failed' })
    expect(chat.history(c)).toEqual([
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'hi' },
    ])
    expect(c.title).toBe('hello there')
    await Promise.resolve()
    await new Promise((r) => setTimeout(r, 0))
    const saved = JSON.parse(localStorage.getItem('llmd.conversations') ?? '[]')
    expect(saved[0].messages).toHaveLength(3)
    setActivePinia(createPinia())
    expect(useChatStore().conversations[0].id).toBe(c.id)
  })

  it('removes conversations and moves the selection', () => {
    const chat = useChatStore()
    const a = chat.create('m')
    const b = chat.create('m')
    expect(chat.currentId).toBe(b.id)
    chat.remove(b.id)
    expect(chat.currentId).toBe(a.id)
    expect(chat.conversations).toHaveLength(1)
  })
})
