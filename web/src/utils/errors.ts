import { ApiError } from '@/api/client'
import { formatTime } from '@/utils/format'

type Translate = (key: string, named?: Record<string, unknown>) => string

// Server error codes the UI says in its own words (a refusal of a key's scope, a code, a limit).
const kErrorKeys: Record<string, string> = {
  key_expired: 'errors.keyExpired',
  key_budget_exhausted: 'errors.keyBudgetExhausted',
  model_not_allowed: 'errors.modelNotAllowed',
  network_not_allowed: 'errors.networkNotAllowed',
  code_used: 'errors.codeUsed',
  code_invalid: 'errors.codeInvalid',
  rate_limited: 'errors.rateLimited',
  insufficient_tokens: 'errors.insufficientTokens',
}

/** The resets_at of an error, at the top of the error object or in its `details`. */
function resetsAt(e: ApiError): number | null {
  const nested = e.details.details
  const v =
    e.details.resets_at ??
    (nested && typeof nested === 'object' ? (nested as Record<string, unknown>).resets_at : undefined)
  return typeof v === 'number' && v > 0 ? v : null
}

/**
 * What to show for a failed call: the translated text of a known error code (`overrides` first,
 * code -> i18n key), else the server's own message. `t` is vue-i18n's translate function.
 */
export function apiErrorText(e: unknown, t: Translate, overrides: Record<string, string> = {}): string {
  if (!(e instanceof ApiError)) return e instanceof Error ? e.message : String(e)
  const override = overrides[e.code]
  if (override) return t(override)
  if (e.code === 'key_budget_exhausted') {
    const at = resetsAt(e)
    if (at) return t('errors.keyBudgetResets', { time: formatTime(at) })
  }
  const key = kErrorKeys[e.code]
  return key ? t(key) : e.message
}
