import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Api } from '@/api'
import type { User } from '@/api/types'
import { useChatStore } from '@/stores/chat'

const kTokenKey = 'llmd.token'
const kUserKey = 'llmd.user'

function readUser(storage: Storage): User | null {
  try {
    const raw = storage.getItem(kUserKey)
    return raw ? (JSON.parse(raw) as User) : null
  } catch {
    return null
  }
}

/** The signed-in session: token and user, kept in localStorage across reloads. */
export const useAuthStore = defineStore('auth', () => {
  const storage = globalThis.localStorage
  const token = ref<string | null>(storage?.getItem(kTokenKey) ?? null)
  const user = ref<User | null>(storage ? readUser(storage) : null)
  const expired = ref(false)

  const loggedIn = computed(() => !!token.value)
  const isAdmin = computed(() => user.value?.role === 'admin')
  // Teachers manage the groups (classes) they own; admins manage them all.
  const isTeacherOrAdmin = computed(() => user.value?.role === 'teacher' || user.value?.role === 'admin')
  const balance = computed(() => user.value?.tokens ?? 0)
  // Someone else set the password (an admin reset): the UI asks for a new one before anything else.
  const mustChangePassword = computed(() => !!token.value && user.value?.must_change_password === true)

  function setSession(t: string, u: User): void {
    token.value = t
    user.value = u
    expired.value = false
    storage?.setItem(kTokenKey, t)
    storage?.setItem(kUserKey, JSON.stringify(u))
  }

  function setUser(u: User): void {
    user.value = u
    storage?.setItem(kUserKey, JSON.stringify(u))
  }

  /** Applies a balance the server reported after a paid call. */
  function setBalance(remaining: number | null | undefined): void {
    if (user.value && typeof remaining === 'number') setUser({ ...user.value, tokens: remaining })
  }

  function logout(sessionExpired = false): void {
    token.value = null
    user.value = null
    expired.value = sessionExpired
    storage?.removeItem(kTokenKey)
    storage?.removeItem(kUserKey)
    // The conversations were this user's: the next one to sign in here must not see them.
    useChatStore().forget()
  }

  async function login(api: Api, username: string, password: string): Promise<void> {
    const s = await api.login(username, password)
    setSession(s.token, s.user)
  }

  async function register(api: Api, username: string, password: string, email: string): Promise<void> {
    const s = await api.register(username, password, email)
    setSession(s.token, s.user)
  }

  /**
   * Changes the signed-in user's password. The server ends every earlier session, this one's too:
   * the session it returns (new token, must_change_password cleared) replaces ours.
   */
  async function changePassword(api: Api, current: string, next: string): Promise<void> {
    const s = await api.changePassword(current, next)
    setSession(s.token, s.user)
  }

  async function refresh(api: Api): Promise<void> {
    const asked = token.value
    if (!asked) return
    const u = await api.profile()
    // A session replaced meanwhile (a password change) has a newer user than this answer.
    if (token.value === asked) setUser(u)
  }

  return {
    token,
    user,
    expired,
    loggedIn,
    isAdmin,
    isTeacherOrAdmin,
    balance,
    mustChangePassword,
    setSession,
    setUser,
    setBalance,
    logout,
    login,
    register,
    changePassword,
    refresh,
  }
})
