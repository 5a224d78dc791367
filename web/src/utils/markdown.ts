import MarkdownIt from 'markdown-it'

// Raw HTML in the source is escaped (html: false) and markdown-it's link
// validation drops javascript:/vbscript:/data: URLs, so model output can
// never inject markup or script.
const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false })

const defaultLink =
  md.renderer.rules.link_open ??
  ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options))
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('target', '_blank')
  tokens[idx].attrSet('rel', 'noopener noreferrer nofollow')
  return defaultLink(tokens, idx, options, env, self)
}

/** Renders untrusted Markdown (model output) to safe HTML. */
export function renderMarkdown(source: string): string {
  return md.render(source)
}
