import { ApiError } from '@/api/client'

/** The server's limits on a password: at least 8 characters, at most 72 bytes of UTF-8 (bcrypt's limit). */
export const kPasswordMinChars = 8
export const kPasswordMaxBytes = 72

/** The i18n key of what is wrong with `next` as a new password replacing `current`, or null when nothing is. */
export function newPasswordProblem(next: string, current: string): string | null {
  if ([...next].length < kPasswordMinChars) return 'password.tooShort'
  if (new TextEncoder().encode(next).length > kPasswordMaxBytes) return 'password.tooLong'
  if (next === current) return 'password.unchanged'
  return null
}

// Server error codes of a password change that the UI says in its own words.
const kErrorKeys: Record<string, string> = {
  wrong_password: 'password.wrongCurrent',
  password_unchanged: 'password.unchanged',
  too_many_attempts: 'password.tooManyAttempts',
  password_too_short: 'password.tooShort',
  password_too_long: 'password.tooLong',
}

/**
 * What to show for a failed password change: the translated text for a known error code, else the
 * server's own message. `t` is vue-i18n's translate function.
 */
export function passwordErrorText(e: unknown, t: (key: string) => string): string {
  if (!(e instanceof ApiError)) return e instanceof Error ? e.message : String(e)
  const key = kErrorKeys[e.code]
  return key ? t(key) : e.message
}
