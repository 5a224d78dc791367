import { describe, expect, it, vi } from 'vitest'
import type { AxiosAdapter, InternalAxiosRequestConfig } from 'axios'
import { ApiError, createClient, mapAxiosError, toApiError } from '@/api/client'

function adapterReplying(
  status: number,
  data: unknown,
  seen: InternalAxiosRequestConfig[] = [],
): AxiosAdapter {
  return async (config) => {
    seen.push(config)
    const response = { data, status, statusText: '', headers: {}, config }
    if (status >= 200 && status < 300) return response
    const { AxiosError } = await import('axios')
    throw new AxiosError(`status ${status}`, 'ERR_BAD_RESPONSE', config, null, response)
  }
}

describe('toApiError', () => {
  it('maps the server error body to code, message, request id and details', () => {
    const e = toApiError(402, {
      error: { code: 'insufficient_tokens', message: 'not enough tokens', request_id: 'r1', needed: 120 },
    })
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(402)
    expect(e.code).toBe('insufficient_tokens')
    expect(e.message).toBe('not enough tokens')
    expect(e.requestId).toBe('r1')
    expect(e.details).toEqual({ needed: 120 })
  })

  it('falls back to the status for bodies that are not API errors', () => {
    const e = toApiError(502, '<html>bad gateway</html>')
    expect(e.code).toBe('http_502')
    expect(e.message).toBe('HTTP 502')
  })

  it('reports a network error when there is no response', () => {
    expect(toApiError(0, null).code).toBe('network_error')
  })

  it('passes an ApiError through and wraps plain errors', () => {
    const original = new ApiError(400, 'bad', 'bad input')
    expect(mapAxiosError(original)).toBe(original)
    expect(mapAxiosError(new Error('boom')).message).toBe('boom')
  })
})

describe('createClient', () => {
  it('sends the bearer token when there is one', async () => {
    const seen: InternalAxiosRequestConfig[] = []
    const client = createClient({ token: () => 'abc', onUnauthorized: () => {} })
    client.defaults.adapter = adapterReplying(200, { ok: true }, seen)
    const r = await client.get('/api/v1/auth/profile')
    expect(r.data).toEqual({ ok: true })
    expect(seen[0].headers.get('Authorization')).toBe('Bearer abc')
  })

  it('calls onUnauthorized on a 401 for an authenticated request and rejects with ApiError', async () => {
    const onUnauthorized = vi.fn()
    const client = createClient({ token: () => 'expired', onUnauthorized })
    client.defaults.adapter = adapterReplying(401, {
      error: { code: 'unauthenticated', message: 'token expired' },
    })
    await expect(client.get('/api/v1/auth/profile')).rejects.toMatchObject({
      status: 401,
      code: 'unauthenticated',
      message: 'token expired',
    })
    expect(onUnauthorized).toHaveBeenCalledTimes(1)
  })

  it('does not treat a failed login (401 without a token) as an expired session', async () => {
    const onUnauthorized = vi.fn()
    const client = createClient({ token: () => null, onUnauthorized })
    client.defaults.adapter = adapterReplying(401, {
      error: { code: 'unauthenticated', message: 'wrong password' },
    })
    await expect(client.post('/api/v1/auth/login', {})).rejects.toBeInstanceOf(ApiError)
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it('ignores a 401 for a token the session no longer uses (it raced a password change)', async () => {
    const onUnauthorized = vi.fn()
    let token = 'old'
    const client = createClient({ token: () => token, onUnauthorized })
    const replying = adapterReplying(401, { error: { code: 'invalid_token', message: 'token revoked' } })
    client.defaults.adapter = async (config) => {
      token = 'new' // the session was replaced while the request was out
      return replying(config)
    }
    await expect(client.get('/api/v1/auth/profile')).rejects.toMatchObject({ status: 401 })
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it('maps other errors without logging out', async () => {
    const onUnauthorized = vi.fn()
    const client = createClient({ token: () => 't', onUnauthorized })
    client.defaults.adapter = adapterReplying(400, {
      error: { code: 'invalid_argument', message: 'line 2, column 5: expected value' },
    })
    const e = await client.post('/api/v1/tasks/convert', {}).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect((e as ApiError).code).toBe('invalid_argument')
    expect(onUnauthorized).not.toHaveBeenCalled()
  })
})
