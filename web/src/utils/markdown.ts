import hljs from 'highlight.js/lib/common'
import katex from 'katex'
import MarkdownIt from 'markdown-it'
import texmath from 'markdown-it-texmath'
import 'katex/dist/katex.min.css'

// Raw HTML in the source is escaped (html: false) and markdown-it's link
// validation drops javascript:/vbscript:/data: URLs, so model output can
// never inject markup or script.
// Fenced code is highlighted by highlight.js when its language is named and
// known (hljs escapes what it highlights; anything else markdown-it escapes).
const md = new MarkdownIt({
  html: false,
  linkify: true,
  breaks: true,
  typographer: false,
  highlight: (code, lang) =>
    lang && hljs.getLanguage(lang)
      ? hljs.highlight(code, { language: lang, ignoreIllegals: true }).value
      : '',
})

// TeX math as models write it: $...$ and $$...$$, \(...\) and \[...\].
// KaTeX renders it to HTML and MathML; with `trust: false` commands such
// as \href and \htmlClass render as plain text, and a formula KaTeX cannot
// parse shows as its source in red instead of failing the whole message.
md.use(texmath, {
  engine: katex,
  delimiters: ['dollars', 'brackets'],
  katexOptions: { throwOnError: false, trust: false, strict: 'ignore', maxSize: 20, maxExpand: 500 },
})
// texmath's $...$ may run across a code span or another $ ("costs $5 and
// $10 ... `echo $HOME`" became one broken formula). Here inline $...$
// holds no $, backtick or line break, and is tried after code spans, so
// `$PATH` stays code; $$...$$ keeps texmath's rule. Both run in their order
// ($$ first). \( and \[ stay before markdown's backslash escapes.
const [doubleDollar, singleDollar] = texmath.rules.dollars.inline
const dollarRules = [
  doubleDollar,
  { ...singleDollar, rex: /\$((?:[^\s\\$`])|(?:[^\s$`][^$`\n]*?[^\s\\$`]))\$/y },
]
for (const rule of [...dollarRules].reverse()) {
  md.inline.ruler.disable(rule.name)
  md.inline.ruler.after('backticks', `${rule.name}_after_code`, texmath.inline(rule))
}

// \[...\] in the middle of a line, as models also write it (texmath takes it
// only as a block at the start of one): shown as display math, rendered by
// the renderer of $$...$$ (same token name).
md.inline.ruler.before(
  'escape',
  'math_inline_brackets_display',
  texmath.inline({ name: 'math_inline_double', rex: /\\\[(.+?)\\\]/y, tmpl: '', tag: '\\[' }),
)

const defaultLink =
  md.renderer.rules.link_open ??
  ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options))
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('target', '_blank')
  tokens[idx].attrSet('rel', 'noopener noreferrer nofollow')
  return defaultLink(tokens, idx, options, env, self)
}

// Every code block gets a copy button (MarkdownView handles its clicks).
const defaultFence = md.renderer.rules.fence!
md.renderer.rules.fence = (tokens, idx, options, env, self) =>
  '<div class="code-block"><button type="button" class="code-copy" data-testid="code-copy">' +
  md.utils.escapeHtml(String(env?.copyLabel ?? 'Copy')) +
  '</button>' +
  defaultFence(tokens, idx, options, env, self) +
  '</div>'

/** Renders untrusted Markdown (model output) with TeX math to safe HTML; `copyLabel` names code blocks' copy button. */
export function renderMarkdown(source: string, copyLabel = 'Copy'): string {
  return md.render(source, { copyLabel })
}
