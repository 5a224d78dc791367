import { createClient } from './client'
import { makeApi } from './index'

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
