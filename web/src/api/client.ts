import axios, { AxiosError, type AxiosInstance } from 'axios'

/** An API failure as the UI shows it: the server's `{error:{code,message}}` or a transport problem. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly requestId?: string
  readonly details: Record<string, unknown>

  constructor(
    status: number,
    code: string,
    message: string,
    requestId?: string,
    details: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.requestId = requestId
    this.details = details
  }
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; request_id?: unknown; [k: string]: unknown }
}

/** Maps a response status + body (parsed JSON or text) to an ApiError. */
export function toApiError(status: number, body: unknown): ApiError {
  const err = (body as ErrorBody | null)?.error
  if (err && typeof err === 'object' && typeof err.code === 'string') {
    const { code, message, request_id, ...details } = err
    return new ApiError(
      status,
      code,
      typeof message === 'string' && message ? message : code,
      typeof request_id === 'string' ? request_id : undefined,
      details,
    )
  }
  if (status === 0) return new ApiError(0, 'network_error', 'network error: the server cannot be reached')
  return new ApiError(status, `http_${status}`, `HTTP ${status}`)
}

/** Maps anything thrown by axios (or by our code) to an ApiError. */
export function mapAxiosError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  if (e instanceof AxiosError) {
    if (e.response) return toApiError(e.response.status, e.response.data)
    if (e.code === AxiosError.ERR_CANCELED) return new ApiError(0, 'cancelled', 'cancelled')
    return toApiError(0, null)
  }
  return new ApiError(0, 'unknown', e instanceof Error ? e.message : String(e))
}

/** The 401 of a password change whose current password is wrong: about the form, not the session. */
const kWrongPasswordCode = 'wrong_password'

export interface ClientHooks {
  /** The current bearer token, if any. */
  token: () => string | null
  /**
   * Called once per 401 on a request sent with the current token (session expired or revoked);
   * not for a wrong current password on a password change.
   */
  onUnauthorized: () => void
}

/** An axios instance that sends the bearer token and turns failures into ApiError. */
export function createClient(hooks: ClientHooks, baseURL = ''): AxiosInstance {
  const client = axios.create({ baseURL, timeout: 600_000 })
  client.interceptors.request.use((config) => {
    const token = hooks.token()
    if (token) config.headers.set('Authorization', `Bearer ${token}`)
    return config
  })
  client.interceptors.response.use(
    (r) => r,
    (e: unknown) => {
      const err = mapAxiosError(e)
      if (err.status === 401 && err.code !== kWrongPasswordCode) {
        // Only a 401 for the token in use ends the session: a request that raced a password
        // change carries the token the change replaced, and its 401 is stale.
        const sent = e instanceof AxiosError ? e.config?.headers?.get?.('Authorization') : undefined
        const token = hooks.token()
        if (sent && token && String(sent) === `Bearer ${token}`) hooks.onUnauthorized()
      }
      return Promise.reject(err)
    },
  )
  return client
}
