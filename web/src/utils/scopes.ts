import type { KeyScopes, Period } from '@/api/types'

/** The scope fields of an API key as the create dialogs edit them (empty = unlimited). */
export interface KeyScopeForm {
  /** When the key stops working: the date picker's milliseconds, or null for never. */
  expires: Date | number | string | null
  /** Tokens the key may spend; null or 0 for no budget of its own. */
  budget: number | null
  /** When the budget starts again; '' for a one-off budget. */
  budgetPeriod: Period | ''
  /** Models the key may call; none chosen = every model. */
  models: string[]
  /** Networks the key is accepted from, as typed (commas, spaces or lines between them). */
  subnets: string
  /** Requests per minute; null or 0 for no limit of its own. */
  rpm: number | null
}

export function emptyKeyScopeForm(): KeyScopeForm {
  return { expires: null, budget: null, budgetPeriod: '', models: [], subnets: '', rpm: null }
}

function ipv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s)
  return !!m && m.slice(1).every((p) => Number(p) <= 255)
}

function ipv6(s: string): boolean {
  if (!s.includes(':') || !/^[0-9a-f:.]+$/i.test(s)) return false
  const halves = s.split('::')
  if (halves.length > 2) return false
  let groups = 0
  for (const [h, half] of halves.entries()) {
    if (!half) continue
    const parts = half.split(':')
    for (const [i, p] of parts.entries()) {
      if (p.includes('.')) {
        // An IPv4 tail ("::ffff:10.0.0.1") counts two groups and only ends the address.
        if (h !== halves.length - 1 || i !== parts.length - 1 || !ipv4(p)) return false
        groups += 2
      } else if (/^[0-9a-f]{1,4}$/i.test(p)) groups += 1
      else return false
    }
  }
  return halves.length === 2 ? groups < 8 : groups === 8
}

/**
 * A network as CIDR ("10.0.0.0/8", "2001:db8::/32"); a bare address becomes its own block
 * ("10.1.2.3" -> "10.1.2.3/32"). null when it is neither.
 */
export function normalizeCidr(text: string): string | null {
  const [addr, prefix, ...rest] = text.trim().split('/')
  if (rest.length > 0 || !addr) return null
  const max = ipv4(addr) ? 32 : ipv6(addr) ? 128 : 0
  if (max === 0) return null
  if (prefix === undefined) return `${addr}/${max}`
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return null
  return `${addr}/${Number(prefix)}`
}

/** The networks of a typed list (separated by commas, spaces or lines), each once, and those that are not networks. */
export function parseSubnets(text: string): { subnets: string[]; invalid: string[] } {
  const subnets: string[] = []
  const invalid: string[] = []
  for (const item of text.split(/[\s,;，；]+/)) {
    if (!item) continue
    const cidr = normalizeCidr(item)
    if (!cidr) invalid.push(item)
    else if (!subnets.includes(cidr)) subnets.push(cidr)
  }
  return { subnets, invalid }
}

/** A date picker's value (milliseconds, as a number or a string) in unix seconds; null for none. */
export function toUnixSeconds(ms: number | string | Date | null | undefined): number | null {
  if (ms === null || ms === undefined || ms === '') return null
  const n = ms instanceof Date ? ms.getTime() : Number(ms)
  return Number.isFinite(n) && n > 0 ? Math.floor(n / 1000) : null
}

/**
 * What a key scope form asks of the server: only the limits that were set (a field left out is
 * unlimited), and the subnets that could not be read (the form refuses to send while there are any).
 */
export function keyScopesBody(f: KeyScopeForm): { scopes: KeyScopes; invalidSubnets: string[] } {
  const scopes: KeyScopes = {}
  const expires = toUnixSeconds(f.expires)
  if (expires !== null) scopes.expires_at = expires
  if (f.budget && f.budget > 0) {
    scopes.budget = Math.floor(f.budget)
    scopes.budget_period = f.budgetPeriod || null
  }
  if (f.models.length > 0) scopes.models = [...f.models]
  const { subnets, invalid } = parseSubnets(f.subnets)
  if (subnets.length > 0) scopes.subnets = subnets
  if (f.rpm && f.rpm > 0) scopes.rpm = Math.floor(f.rpm)
  return { scopes, invalidSubnets: invalid }
}
