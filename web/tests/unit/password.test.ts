import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { AxiosError, type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios'
import { makeApi, type Api } from '@/api'
import { ApiError, createClient } from '@/api/client'
import type { User } from '@/api/types'
import { useAuthStore } from '@/stores/auth'
import { newPasswordProblem, passwordErrorText } from '@/utils/password'

const bob: User = {
  id: 3,
  username: 'bob',
  email: 'b@example.com',
  role: 'user',
  tokens: 500,
  disabled: false,
  created_at: 1,
  must_change_password: true,
}

// An API over a fake transport that answers every request with `status` and `data`.
function apiReplying(status: number, data: unknown, token = 'jwt-old') {
  const seen: InternalAxiosRequestConfig[] = []
  const onUnauthorized = vi.fn()
  const http = createClient({ token: () => token, onUnauthorized })
  http.defaults.adapter = (async (config) => {
    seen.push(config)
    const response = { data, status, statusText: '', headers: {}, config }
    if (status >= 200 && status < 300) return response
    throw new AxiosError(`status ${status}`, 'ERR_BAD_RESPONSE', config, null, response)
  }) as AxiosAdapter
  return { api: makeApi(http), seen, onUnauthorized }
}

beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
})

describe('password API calls', () => {
  it('changePassword posts both passwords and returns the new session', async () => {
    const { api, seen } = apiReplying(200, {
      token: 'jwt-new',
      user: { ...bob, must_change_password: false },
    })
    const s = await api.changePassword('old-password', 'new-password')
    expect(seen[0].method).toBe('post')
    expect(seen[0].url).toBe('/api/v1/auth/password')
    expect(JSON.parse(seen[0].data)).toEqual({
      current_password: 'old-password',
      new_password: 'new-password',
    })
    expect(seen[0].headers.get('Authorization')).toBe('Bearer jwt-old')
    expect(s.token).toBe('jwt-new')
    expect(s.user.must_change_password).toBe(false)
  })

  it('a wrong current password is a form error, not the end of the session', async () => {
    const { api, onUnauthorized } = apiReplying(401, {
      error: { code: 'wrong_password', message: 'the current password is wrong' },
    })
    await expect(api.changePassword('bad', 'new-password')).rejects.toMatchObject({
      status: 401,
      code: 'wrong_password',
    })
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it('adminResetPassword asks for a generated password by default and returns it', async () => {
    const { api, seen } = apiReplying(200, { user: bob, password: 'Gen3rated-pw' })
    const r = await api.adminResetPassword(3)
    expect(seen[0].url).toBe('/api/v1/admin/users/3/password')
    expect(JSON.parse(seen[0].data)).toEqual({})
    expect(r.password).toBe('Gen3rated-pw')
    expect(r.user.must_change_password).toBe(true)
  })

  it('adminResetPassword passes a chosen password and must_change through', async () => {
    const { api, seen } = apiReplying(200, { user: { ...bob, must_change_password: false } })
    const r = await api.adminResetPassword(3, { password: 'chosen-password', must_change: false })
    expect(JSON.parse(seen[0].data)).toEqual({ password: 'chosen-password', must_change: false })
    expect(r.password).toBeUndefined()
  })
})

describe('new password checks', () => {
  it('wants 8 characters to 72 bytes, different from the current one', () => {
    expect(newPasswordProblem('short', 'old-password')).toBe('password.tooShort')
    expect(newPasswordProblem('a'.repeat(72), 'old-password')).toBeNull()
    expect(newPasswordProblem('a'.repeat(73), 'old-password')).toBe('password.tooLong')
    // 25 Chinese characters are 75 bytes of UTF-8.
    expect(newPasswordProblem('密'.repeat(25), 'old-password')).toBe('password.tooLong')
    expect(newPasswordProblem('old-password', 'old-password')).toBe('password.unchanged')
    expect(newPasswordProblem('new-password', 'old-password')).toBeNull()
  })

  it('translates the error codes it knows and shows the server message otherwise', () => {
    const t = (key: string) => `T(${key})`
    expect(passwordErrorText(new ApiError(401, 'wrong_password', 'the current password is wrong'), t)).toBe(
      'T(password.wrongCurrent)',
    )
    expect(passwordErrorText(new ApiError(400, 'password_unchanged', 'same'), t)).toBe(
      'T(password.unchanged)',
    )
    expect(passwordErrorText(new ApiError(429, 'too_many_attempts', 'slow down'), t)).toBe(
      'T(password.tooManyAttempts)',
    )
    expect(passwordErrorText(new ApiError(403, 'forbidden', 'log in with the password'), t)).toBe(
      'log in with the password',
    )
    expect(passwordErrorText(new Error('boom'), t)).toBe('boom')
  })
})

describe('auth store and password changes', () => {
  it('a change replaces the token and clears must_change_password, across reloads', async () => {
    const auth = useAuthStore()
    auth.setSession('jwt-old', bob)
    expect(auth.mustChangePassword).toBe(true)
    const changed = { ...bob, must_change_password: false }
    const api = {
      changePassword: vi.fn().mockResolvedValue({ token: 'jwt-new', user: changed }),
    } as unknown as Api
    await auth.changePassword(api, 'old-password', 'new-password')
    expect(api.changePassword).toHaveBeenCalledWith('old-password', 'new-password')
    expect(auth.token).toBe('jwt-new')
    expect(auth.mustChangePassword).toBe(false)
    expect(localStorage.getItem('llmd.token')).toBe('jwt-new')
    setActivePinia(createPinia())
    const again = useAuthStore()
    expect(again.token).toBe('jwt-new')
    expect(again.mustChangePassword).toBe(false)
  })

  it('a failed change keeps the session as it was', async () => {
    const auth = useAuthStore()
    auth.setSession('jwt-old', bob)
    const api = {
      changePassword: vi.fn().mockRejectedValue(new ApiError(401, 'wrong_password', 'wrong')),
    } as unknown as Api
    await expect(auth.changePassword(api, 'bad', 'new-password')).rejects.toMatchObject({
      code: 'wrong_password',
    })
    expect(auth.token).toBe('jwt-old')
    expect(auth.mustChangePassword).toBe(true)
  })

  it('asks for a change after a reload when the stored user must change the password', () => {
    useAuthStore().setSession('jwt', bob)
    setActivePinia(createPinia())
    expect(useAuthStore().mustChangePassword).toBe(true)
  })

  it('does not ask once logged out', () => {
    const auth = useAuthStore()
    auth.setSession('jwt', bob)
    auth.logout()
    expect(auth.mustChangePassword).toBe(false)
  })

  it('a profile answer for a session replaced meanwhile is dropped', async () => {
    const auth = useAuthStore()
    auth.setSession('jwt-old', bob)
    let answer: (u: User) => void = () => {}
    const api = {
      profile: vi.fn().mockReturnValue(new Promise<User>((r) => (answer = r))),
      changePassword: vi
        .fn()
        .mockResolvedValue({ token: 'jwt-new', user: { ...bob, must_change_password: false } }),
    } as unknown as Api
    const refreshing = auth.refresh(api)
    await auth.changePassword(api, 'old-password', 'new-password')
    answer(bob) // asked with the old token: still must_change_password
    await refreshing
    expect(auth.mustChangePassword).toBe(false)
  })
})
