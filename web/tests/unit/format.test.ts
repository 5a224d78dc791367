import { describe, expect, it } from 'vitest'
import {
  countBy,
  errorPosition,
  formatBytes,
  formatDuration,
  formatNumber,
  percent,
  perDay,
  toCsv,
} from '@/utils/format'
import { renderMarkdown } from '@/utils/markdown'

describe('formatters', () => {
  it('formats numbers, bytes and durations', () => {
    expect(formatNumber(1234567)).toBe('1,234,567')
    expect(formatNumber(undefined)).toBe('—')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KB')
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB')
    expect(formatDuration(850)).toBe('850 ms')
    expect(formatDuration(2345)).toBe('2.3 s')
  })

  it('clamps percentages and handles a zero total', () => {
    expect(percent(3, 4)).toBe(75)
    expect(percent(5, 4)).toBe(100)
    expect(percent(1, 0)).toBe(0)
  })

  it('sums per local day over a window, oldest first, ignoring older records', () => {
    const now = new Date(2026, 10, 27, 15, 0, 0)
    const at = (daysAgo: number) => Math.floor(new Date(2026, 10, 27 - daysAgo, 10).getTime() / 1000)
    const rows = [
      { created_at: at(0), charged: 5 },
      { created_at: at(0), charged: 7 },
      { created_at: at(2), charged: 3 },
      { created_at: at(9), charged: 100 },
    ]
    const days = perDay(rows, 7, (r) => r.charged, now)
    expect(days).toHaveLength(7)
    expect(days[6]).toEqual({ day: '2026-11-27', total: 12 })
    expect(days[4]).toEqual({ day: '2026-11-25', total: 3 })
    expect(days.reduce((s, d) => s + d.total, 0)).toBe(15)
  })

  it('counts by key, largest first', () => {
    expect(countBy([{ t: 'chat' }, { t: 'convert' }, { t: 'chat' }], (r) => r.t)).toEqual([
      { name: 'chat', value: 2 },
      { name: 'convert', value: 1 },
    ])
  })

  it('writes CSV with quoting and neutralised formulas', () => {
    const csv = toCsv(
      [
        { a: 'x,y', b: 'say "hi"' },
        { a: '=SUM(A1)', b: 3 },
      ],
      ['a', 'b'],
    )
    expect(csv).toBe('a,b\r\n"x,y","say ""hi"""\r\n\'=SUM(A1),3\r\n')
  })

  it('finds line and column in parser messages', () => {
    expect(errorPosition('JSON: line 3, column 7: expected value')).toEqual({ line: 3, column: 7 })
    expect(errorPosition('at 12:4 unexpected token')).toEqual({ line: 12, column: 4 })
    expect(errorPosition('no position')).toBeNull()
  })
})

describe('renderMarkdown', () => {
  it('renders Markdown but escapes HTML and drops script URLs', () => {
    const html = renderMarkdown('**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))')
    expect(html).toContain('<strong>bold</strong>')
    expect(html).not.toContain('<img')
    expect(html).toContain('&lt;img')
    expect(html).not.toContain('href="javascript:')
  })

  it('renders TeX math in every delimiter models use', () => {
    const inline = renderMarkdown('So $x^2+1$ and \\(\\frac{1}{2}\\) hold.')
    expect(inline.match(/class="katex"/g)).toHaveLength(2)
    expect(inline).toContain('<mfrac>')
    expect(inline).not.toContain('$x^2')
    // Chinese text puts no spaces around its formulas.
    expect(renderMarkdown('面积是$x^2$平方米，约$3.5$。')).toMatch(
      /面积是<eq><span class="katex">[\s\S]*平方米/,
    )
    const display = renderMarkdown('\\[\\int_0^1 x\\,dx\\]\n\n$$a^2+b^2=c^2$$')
    expect(display.match(/class="katex-display"/g)).toHaveLength(2)
    expect(display).toContain('∫')
  })

  it('leaves prices and code alone and never trusts TeX with links or HTML', () => {
    const prices = renderMarkdown(
      'It costs $5 and $10 today; `echo $HOME` and `$PATH` are code, \\$x\\$ is not math.',
    )
    expect(prices).not.toContain('katex')
    expect(prices).toContain('$5 and $10')
    expect(prices).toContain('<code>echo $HOME</code>')
    expect(prices).toContain('<code>$PATH</code>')
    expect(prices).toContain('$x$ is not math')
    const hostile = renderMarkdown(
      '$\\href{javascript:alert(1)}{x}$ $\\htmlClass{evil}{y}$ $<img src=x onerror=alert(1)>$ $\\frac{1}{$',
    )
    expect(hostile).not.toContain('href="javascript:')
    expect(hostile).not.toContain('class="evil"')
    expect(hostile).not.toContain('<img')
  })
})
