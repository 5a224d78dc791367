import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { AxiosError, type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios'
import type { RouteLocationNormalized } from 'vue-router'
import { makeApi } from '@/api'
import { ApiError, createClient } from '@/api/client'
import type { Group, User } from '@/api/types'
import en from '@/i18n/en'
import zh from '@/i18n/zh-CN'
import { guard } from '@/router'
import { useAuthStore } from '@/stores/auth'
import { apiErrorText } from '@/utils/errors'
import { allowanceText, groupBody, groupForm, limitsText, redeemerText, timeZones } from '@/utils/groups'
import { emptyKeyScopeForm, keyScopesBody, normalizeCidr, parseSubnets, toUnixSeconds } from '@/utils/scopes'

// A translate function that shows which key and values it was asked for.
const t = (key: string, named?: Record<string, unknown>) =>
  named ? `T(${key} ${JSON.stringify(named)})` : `T(${key})`

const group: Group = {
  id: 4,
  name: 'Class 3',
  owner: { id: 7, username: 'teacher1' },
  models: ['tiny'],
  price_ratio: 0.5,
  rpm: 20,
  tpm: 0,
  allowance: { amount: 300, period: 'week' },
  time_zone: 'Asia/Shanghai',
  pool: 1000,
  members: 2,
  created_at: 1,
}

describe('subnets', () => {
  it('reads CIDR blocks and bare addresses (as single-address blocks)', () => {
    expect(normalizeCidr('10.0.0.0/8')).toBe('10.0.0.0/8')
    expect(normalizeCidr(' 192.168.1.7 ')).toBe('192.168.1.7/32')
    expect(normalizeCidr('2001:db8::/32')).toBe('2001:db8::/32')
    expect(normalizeCidr('::1')).toBe('::1/128')
    expect(normalizeCidr('::ffff:10.0.0.1/128')).toBe('::ffff:10.0.0.1/128')
    expect(normalizeCidr('1:2:3:4:5:6:7:8/64')).toBe('1:2:3:4:5:6:7:8/64')
    expect(normalizeCidr('10.0.0.0/08')).toBe('10.0.0.0/8')
  })

  it('refuses what is not a network', () => {
    for (const bad of [
      '10.0.0.256/8',
      '10.0.0.0/33',
      '10.0.0/8',
      'example.com',
      '10.0.0.0/8/1',
      '/8',
      '1::2::3',
      '::1/129',
      'fe80::zz',
      '1:2:3:4:5:6:7:8:9',
      '10.0.0.0/',
    ]) {
      expect(normalizeCidr(bad), bad).toBeNull()
    }
  })

  it('splits on commas, spaces and lines, drops repeats and reports the bad ones', () => {
    expect(parseSubnets('10.0.0.0/8, 192.168.0.0/16\n\n 10.0.0.0/8；172.16.0.1 nope')).toEqual({
      subnets: ['10.0.0.0/8', '192.168.0.0/16', '172.16.0.1/32'],
      invalid: ['nope'],
    })
    expect(parseSubnets('  \n ')).toEqual({ subnets: [], invalid: [] })
  })
})

describe('key scopes', () => {
  it('turns date picker values into unix seconds', () => {
    expect(toUnixSeconds(1_700_000_000_999)).toBe(1_700_000_000)
    expect(toUnixSeconds('1700000000000')).toBe(1_700_000_000)
    expect(toUnixSeconds(new Date(1_700_000_000_000))).toBe(1_700_000_000)
    expect(toUnixSeconds(null)).toBeNull()
    expect(toUnixSeconds('')).toBeNull()
    expect(toUnixSeconds('soon')).toBeNull()
  })

  it('sends nothing for an empty form: the key is unlimited', () => {
    expect(keyScopesBody(emptyKeyScopeForm())).toEqual({ scopes: {}, invalidSubnets: [] })
  })

  it('sends only the limits that were set', () => {
    const f = {
      expires: new Date(1_800_000_000_000),
      budget: 5000,
      budgetPeriod: 'month' as const,
      models: ['tiny'],
      subnets: '10.0.0.0/8\n127.0.0.1',
      rpm: 30,
    }
    expect(keyScopesBody(f)).toEqual({
      scopes: {
        expires_at: 1_800_000_000,
        budget: 5000,
        budget_period: 'month',
        models: ['tiny'],
        subnets: ['10.0.0.0/8', '127.0.0.1/32'],
        rpm: 30,
      },
      invalidSubnets: [],
    })
    // A one-off budget, no rate limit, and a network that cannot be read.
    const once = keyScopesBody({ ...emptyKeyScopeForm(), budget: 100, rpm: 0, subnets: '10.0.0.0/99' })
    expect(once.scopes).toEqual({ budget: 100, budget_period: null })
    expect(once.invalidSubnets).toEqual(['10.0.0.0/99'])
  })
})

describe('group form', () => {
  it('round-trips a group and leaves out what only admins may set for a teacher', () => {
    const f = groupForm(group)
    expect(groupBody(f, false)).toEqual({
      name: 'Class 3',
      models: ['tiny'],
      rpm: 20,
      tpm: 0,
      allowance: { amount: 300, period: 'week' },
      time_zone: 'Asia/Shanghai',
    })
    expect(groupBody(f, true)).toMatchObject({ price_ratio: 0.5, owner: 'teacher1' })
  })

  it('sends null for all models and no allowance, UTC by default', () => {
    const f = { ...groupForm(), name: '  New class ' }
    expect(groupBody(f, false)).toEqual({
      name: 'New class',
      models: null,
      rpm: 0,
      tpm: 0,
      allowance: null,
      time_zone: 'UTC',
    })
    // An admin creating a group with no owner named leaves the owner to the server.
    expect(groupBody(f, true)).toEqual({ ...groupBody(f, false), price_ratio: 1 })
    // A period without an amount is no allowance.
    expect(groupBody({ ...f, allowancePeriod: 'day', allowanceAmount: 0 }, false).allowance).toBeNull()
  })

  it('formats allowances, limits and redeemers', () => {
    expect(allowanceText({ amount: 1500, period: 'week' }, t)).toBe(
      'T(groups.allowanceValue {"amount":"1,500","period":"T(periods.week)"})',
    )
    expect(allowanceText(null, t)).toBe('T(groups.noAllowance)')
    expect(limitsText(0, 0, t)).toBe('T(groups.unlimited)')
    expect(limitsText(60, 0, t)).toBe('T(groups.rpmValue {"n":"60"})')
    expect(limitsText(0, 5000, t)).toBe('T(groups.tpmValue {"n":"5,000"})')
    expect(limitsText(60, 5000, t)).toBe('T(groups.rpmValue {"n":"60"}) · T(groups.tpmValue {"n":"5,000"})')
    expect(redeemerText(null)).toBe('')
    expect(redeemerText(12)).toBe('#12')
    expect(redeemerText('bob')).toBe('bob')
    expect(redeemerText({ id: 3, username: 'carol' })).toBe('carol')
  })

  it('offers UTC first among the time zones', () => {
    const zones = timeZones()
    expect(zones[0]).toBe('UTC')
    expect(new Set(zones).size).toBe(zones.length)
  })

  it('has the period and role names in both languages', () => {
    for (const p of ['day', 'week', 'month'] as const) {
      expect(en.periods[p]).toBeTruthy()
      expect(zh.periods[p]).toBeTruthy()
      expect(zh.periodsEvery[p]).toBeTruthy()
    }
    expect(Object.keys(zh.roles)).toEqual(Object.keys(en.roles))
    expect(Object.keys(zh.errors)).toEqual(Object.keys(en.errors))
  })
})

describe('refusal messages', () => {
  it('translates the codes of scopes, codes and limits', () => {
    const cases: [string, string][] = [
      ['key_expired', 'errors.keyExpired'],
      ['key_budget_exhausted', 'errors.keyBudgetExhausted'],
      ['model_not_allowed', 'errors.modelNotAllowed'],
      ['network_not_allowed', 'errors.networkNotAllowed'],
      ['code_used', 'errors.codeUsed'],
      ['code_invalid', 'errors.codeInvalid'],
      ['rate_limited', 'errors.rateLimited'],
    ]
    for (const [code, key] of cases) {
      expect(apiErrorText(new ApiError(403, code, 'server words'), t)).toBe(`T(${key})`)
      // Every key it uses is in both languages.
      const [ns, name] = key.split('.') as ['errors', keyof typeof en.errors]
      expect(en[ns][name]).toBeTruthy()
      expect(zh[ns][name]).toBeTruthy()
    }
  })

  it("says when an exhausted key's budget starts again", () => {
    const e = new ApiError(402, 'key_budget_exhausted', 'used up', 'r1', { resets_at: 1_700_000_000 })
    expect(apiErrorText(e, t)).toMatch(
      /^T\(errors\.keyBudgetResets \{"time":"\d{4}-\d\d-\d\d \d\d:\d\d"\}\)$/,
    )
    const nested = new ApiError(402, 'key_budget_exhausted', 'used up', 'r1', {
      details: { resets_at: 1_700_000_000 },
    })
    expect(apiErrorText(nested, t)).toContain('errors.keyBudgetResets')
  })

  it('lets a view say a code its own way, and shows the server message for the rest', () => {
    const poor = new ApiError(402, 'insufficient_tokens', 'pool too small')
    expect(apiErrorText(poor, t)).toBe('T(errors.insufficientTokens)')
    expect(apiErrorText(poor, t, { insufficient_tokens: 'groups.poolTooSmall' })).toBe(
      'T(groups.poolTooSmall)',
    )
    expect(apiErrorText(new ApiError(400, 'invalid_argument', 'bad name'), t)).toBe('bad name')
    expect(apiErrorText(new Error('boom'), t)).toBe('boom')
  })
})

// An API over a fake transport that answers every request with `status` and `data`.
function apiReplying(status: number, data: unknown) {
  const seen: InternalAxiosRequestConfig[] = []
  const http = createClient({ token: () => 'jwt', onUnauthorized: () => {} })
  http.defaults.adapter = (async (config) => {
    seen.push(config)
    const response = { data, status, statusText: '', headers: {}, config }
    if (status >= 200 && status < 300) return response
    throw new AxiosError(`status ${status}`, 'ERR_BAD_RESPONSE', config, null, response)
  }) as AxiosAdapter
  return { api: makeApi(http), seen }
}

describe('group API calls', () => {
  it('creates a key with its scopes, and a plain one with its name only', async () => {
    const { api, seen } = apiReplying(201, { id: 1, key: 'sk-x', name: 'ci' })
    await api.createKey('ci', { budget: 10, budget_period: 'day', subnets: ['10.0.0.0/8'] })
    await api.createKey('plain')
    expect(seen[0].url).toBe('/api/v1/auth/keys')
    expect(JSON.parse(seen[0].data)).toEqual({
      name: 'ci',
      budget: 10,
      budget_period: 'day',
      subnets: ['10.0.0.0/8'],
    })
    expect(JSON.parse(seen[1].data)).toEqual({ name: 'plain' })
  })

  it('creates, edits and lists groups', async () => {
    const { api, seen } = apiReplying(201, { group, groups: [group] })
    expect(await api.createGroup({ name: 'Class 3' })).toEqual(group)
    await api.updateGroup(4, { rpm: 5 })
    expect(await api.groups()).toEqual([group])
    expect(seen.map((c) => `${c.method} ${c.url}`)).toEqual([
      'post /api/v1/groups',
      'patch /api/v1/groups/4',
      'get /api/v1/groups',
    ])
  })

  it('addresses members by username, pools, grants, exam keys and codes', async () => {
    const { api, seen } = apiReplying(200, { pool: 900, remaining_tokens: 150, codes: ['A', 'B'] })
    await api.removeGroupMember(4, 'a b')
    expect(await api.topUpGroupPool(4, 1000, 'term')).toBe(900)
    expect(await api.grantFromPool(4, 'bob', 100, 'prize')).toEqual({
      pool: 900,
      remaining_tokens: 150,
      codes: ['A', 'B'],
    })
    await api.createExamKey(4, 'bob', 'exam', { rpm: 5 })
    expect(await api.createCodes({ count: 2, amount: 50, group_id: 4 })).toEqual(['A', 'B'])
    await api.codes(4)
    await api.codes()
    expect(seen.map((c) => `${c.method} ${c.url}`)).toEqual([
      'delete /api/v1/groups/4/members/a%20b',
      'post /api/v1/admin/groups/4/pool',
      'post /api/v1/groups/4/grant',
      'post /api/v1/groups/4/keys',
      'post /api/v1/codes',
      'get /api/v1/codes',
      'get /api/v1/codes',
    ])
    expect(JSON.parse(seen[3].data)).toEqual({ username: 'bob', name: 'exam', rpm: 5 })
    expect(seen[5].params).toEqual({ group_id: 4 })
    expect(seen[6].params).toEqual({})
  })

  it('redeems a code, and a used code is an ApiError with its code', async () => {
    const ok = apiReplying(200, {
      tokens_added: 50,
      remaining_tokens: 150,
      group: { id: 4, name: 'Class 3' },
    })
    expect(await ok.api.redeem('ABCD')).toEqual({
      tokens_added: 50,
      remaining_tokens: 150,
      group: { id: 4, name: 'Class 3' },
    })
    expect(JSON.parse(ok.seen[0].data)).toEqual({ code: 'ABCD' })
    const used = apiReplying(409, { error: { code: 'code_used', message: 'already redeemed' } })
    await expect(used.api.redeem('ABCD')).rejects.toMatchObject({ status: 409, code: 'code_used' })
  })
})

describe('teacher pages', () => {
  const user: User = {
    id: 2,
    username: 'alice',
    email: 'a@example.com',
    role: 'user',
    tokens: 1,
    disabled: false,
    created_at: 1,
  }
  const route = (meta: Record<string, unknown>) =>
    ({ path: '/groups', fullPath: '/groups', meta }) as unknown as RouteLocationNormalized

  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createPinia())
  })

  it('are for teachers and admins; admin pages stay admin-only', () => {
    const auth = useAuthStore()
    auth.setSession('jwt', user)
    expect(guard(route({ teacher: true }))).toEqual({ name: 'dashboard' })
    auth.setSession('jwt', { ...user, role: 'teacher' })
    expect(auth.isTeacherOrAdmin).toBe(true)
    expect(guard(route({ teacher: true }))).toBe(true)
    expect(guard(route({ admin: true }))).toEqual({ name: 'dashboard' })
    auth.setSession('jwt', { ...user, role: 'admin' })
    expect(guard(route({ teacher: true }))).toBe(true)
    expect(guard(route({ admin: true }))).toBe(true)
  })
})
