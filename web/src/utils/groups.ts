import type { Allowance, Group, GroupInput, Period, RedeemCode } from '@/api/types'
import { formatNumber } from '@/utils/format'

export const kPeriods: Period[] = ['day', 'week', 'month']

type Translate = (key: string, named?: Record<string, unknown>) => string

/** The fields of the group create/edit dialog. */
export interface GroupForm {
  name: string
  /** None chosen = every model. */
  models: string[]
  priceRatio: number
  rpm: number
  tpm: number
  /** '' = no allowance. */
  allowancePeriod: Period | ''
  allowanceAmount: number
  timeZone: string
  /** Username of the owner (admins only); '' = the server's default (whoever creates it). */
  owner: string
}

/** The dialog's fields for a new group, or for editing `g`. */
export function groupForm(g?: Group | null): GroupForm {
  return {
    name: g?.name ?? '',
    models: g?.models ? [...g.models] : [],
    priceRatio: g?.price_ratio ?? 1,
    rpm: g?.rpm ?? 0,
    tpm: g?.tpm ?? 0,
    allowancePeriod: g?.allowance?.period ?? '',
    allowanceAmount: g?.allowance?.amount ?? 0,
    timeZone: g?.time_zone ?? 'UTC',
    owner: g?.owner.username ?? '',
  }
}

/**
 * The body of a group's POST or PATCH. The price ratio and the owner are an administrator's to set:
 * a teacher's body leaves them out (the server refuses a teacher's price_ratio).
 */
export function groupBody(f: GroupForm, isAdmin: boolean): GroupInput {
  const body: GroupInput = {
    name: f.name.trim(),
    models: f.models.length > 0 ? [...f.models] : null,
    rpm: Math.max(0, Math.floor(f.rpm || 0)),
    tpm: Math.max(0, Math.floor(f.tpm || 0)),
    allowance:
      f.allowancePeriod && f.allowanceAmount > 0
        ? { amount: Math.floor(f.allowanceAmount), period: f.allowancePeriod }
        : null,
    time_zone: f.timeZone.trim() || 'UTC',
  }
  if (isAdmin) {
    body.price_ratio = f.priceRatio
    if (f.owner.trim()) body.owner = f.owner.trim()
  }
  return body
}

/** "300 / week" (in the UI's language), or the "none" text. */
export function allowanceText(
  a: Pick<Allowance, 'amount' | 'period'> | null | undefined,
  t: Translate,
): string {
  if (!a) return t('groups.noAllowance')
  return t('groups.allowanceValue', { amount: formatNumber(a.amount), period: t(`periods.${a.period}`) })
}

/** A group's rate limits ("20 req/min · 5,000 tokens/min"), where 0 is none; "no limit" when both are. */
export function limitsText(
  rpm: number | null | undefined,
  tpm: number | null | undefined,
  t: Translate,
): string {
  const parts: string[] = []
  if (rpm && rpm > 0) parts.push(t('groups.rpmValue', { n: formatNumber(rpm) }))
  if (tpm && tpm > 0) parts.push(t('groups.tpmValue', { n: formatNumber(tpm) }))
  return parts.length > 0 ? parts.join(' · ') : t('groups.unlimited')
}

/** The IANA time zones the browser knows, UTC first; the browser's own is always among them. */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] }
  let zones: string[]
  try {
    zones = intl.supportedValuesOf?.('timeZone') ?? []
  } catch {
    zones = []
  }
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone
  return [...new Set(['UTC', ...(own ? [own] : []), ...zones])]
}

/** Who redeemed a code, however the server names them; '' when nobody has. */
export function redeemerText(by: RedeemCode['redeemed_by']): string {
  if (by === null || by === undefined || by === '') return ''
  if (typeof by === 'object') return by.username || `#${by.id}`
  return typeof by === 'number' ? `#${by}` : by
}
