import { describe, expect, it } from 'vitest'
import { renderMarkdown } from '@/utils/markdown'

function formulas(html: string): number {
  return (html.match(/class="katex"/g) ?? []).length
}

describe('markdown with TeX math', () => {
  it('renders the four ways models write math, also in the middle of a line', () => {
    const inline = renderMarkdown(
      'Inline $x^2+1$, paren \\(\\frac{1}{2}\\), display $$\\sum_{i=1}^n i$$ and bracket \\[\\int_0^1 x\\,dx\\] here.',
    )
    expect(formulas(inline)).toBe(4)
    expect(inline).toContain('here.')
    const blocks = renderMarkdown(
      'Sum:\n\n$$\n\\sum_{i=1}^n i\n$$\n\nIntegral:\n\n\\[\n\\int_0^1 x\\,dx\n\\]\n',
    )
    expect(formulas(blocks)).toBe(2)
    expect(blocks).toContain('katex-display')
  })

  it('keeps prices, code and HTML as text', () => {
    const html = renderMarkdown('It costs $5 and $10. Run `echo $HOME`. <img src=x onerror=alert(1)>')
    expect(formulas(html)).toBe(0)
    expect(html).toContain('<code>echo $HOME</code>')
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;')
    expect(html).not.toContain('<img')
  })

  it('leaves KaTeX links and HTML commands inert', () => {
    const html = renderMarkdown('$\\href{javascript:alert(1)}{click}$ and \\[\\htmlClass{x}{y}\\]')
    // Shown as its source (KaTeX's error color), never as a link or a class.
    expect(html).not.toMatch(/href=|<a\b/)
    expect(html).not.toMatch(/class="[^"]*\bx\b/)
    expect(html).toContain('\\href{javascript:alert(1)}{click}')
  })

  it('highlights fenced code and gives each block a copy button', () => {
    const html = renderMarkdown(
      '```python\ndef f(x):\n    return "<b>" + x\n```\n\n```\nplain <i>\n```',
      '复制',
    )
    expect(html).toContain('hljs-keyword')
    expect((html.match(/data-testid="code-copy">复制</g) ?? []).length).toBe(2)
    expect(html).toContain('&lt;b&gt;')
    expect(html).toContain('plain &lt;i&gt;')
    expect(html).not.toMatch(/<b>|<i>/)
  })
})
