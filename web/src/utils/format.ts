/** 1234567 -> "1,234,567". */
export function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—'
  return Math.round(n).toLocaleString('en-US')
}

/** Bytes as B, KB, MB, GB (1024-based, one decimal above KB). */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || n < 0 || Number.isNaN(n)) return '—'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** Unix seconds -> "YYYY-MM-DD HH:mm" in local time. */
export function formatTime(unixSeconds: number | null | undefined): string {
  if (!unixSeconds) return '—'
  const d = new Date(unixSeconds * 1000)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** Local calendar day "YYYY-MM-DD" of a unix time. */
export function dayKey(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

/** Milliseconds as "850 ms" or "2.3 s". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—'
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** Clamped integer percentage of done/total (0 when total is 0). */
export function percent(done: number, total: number): number {
  if (!total || total <= 0) return 0
  return Math.max(0, Math.min(100, Math.round((done / total) * 100)))
}

/** Sums `value(r)` per local day over the last `days` days ending today, oldest first. */
export function perDay<T extends { created_at: number }>(
  records: T[],
  days: number,
  value: (r: T) => number,
  now: Date = new Date(),
): { day: string; total: number }[] {
  const out: { day: string; total: number }[] = []
  const index = new Map<string, number>()
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - i)
    const key = dayKey(d.getTime() / 1000)
    index.set(key, out.length)
    out.push({ day: key, total: 0 })
  }
  for (const r of records) {
    const i = index.get(dayKey(r.created_at))
    if (i !== undefined) out[i].total += value(r)
  }
  return out
}

/** Counts records by a key, largest first. */
export function countBy<T>(records: T[], key: (r: T) => string): { name: string; value: number }[] {
  const m = new Map<string, number>()
  for (const r of records) {
    const k = key(r) || '—'
    m.set(k, (m.get(k) ?? 0) + 1)
  }
  return [...m.entries()].map(([name, value]) => ({ name, value })).sort((a, b) => b.value - a.value)
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v)
  // Quote when needed; neutralise spreadsheet formulas.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

/** Rows of objects as CSV with the given columns (RFC 4180 quoting, CRLF lines). */
export function toCsv<T extends object>(rows: T[], columns: (keyof T & string)[]): string {
  const lines = [columns.map(csvCell).join(',')]
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(','))
  return lines.join('\r\n') + '\r\n'
}

/** Line and column of a parser message such as "line 3, column 7: ..." (or "3:7"), if present. */
export function errorPosition(message: string): { line: number; column: number } | null {
  const m = /line\s+(\d+)(?:,?\s*col(?:umn)?\s+(\d+))?/i.exec(message) ?? /\b(\d+):(\d+)\b/.exec(message)
  if (!m) return null
  return { line: Number(m[1]), column: m[2] ? Number(m[2]) : 1 }
}

/** Saves text or a blob as a file download. */
export function downloadFile(name: string, data: Blob | string, type = 'text/plain;charset=utf-8'): void {
  const blob = typeof data === 'string' ? new Blob([data], { type }) : data
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}
