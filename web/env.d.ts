/// <reference types="vite/client" />
declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}

// markdown-it-texmath ships no types: a markdown-it plugin taking KaTeX as
// its engine.
declare module 'markdown-it-texmath' {
  import type MarkdownIt from 'markdown-it'
  interface TexmathOptions {
    engine: unknown
    delimiters?: string | string[]
    katexOptions?: Record<string, unknown>
  }
  interface TexmathRule {
    name: string
    rex: RegExp
    [more: string]: unknown
  }
  const texmath: {
    (md: MarkdownIt, options?: TexmathOptions): void
    rules: Record<string, { inline: TexmathRule[]; block: TexmathRule[] }>
    inline: (rule: TexmathRule) => MarkdownIt.ParserInline.RuleInline
  }
  export default texmath
}
