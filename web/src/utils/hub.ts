/**
 * What an admin types in the download dialog: a Hugging Face repository
 * ("owner/repo", "hf:owner/repo", or its huggingface.co address), or a direct
 * URL of a .gguf file.
 */

/** The repository name ("owner/repo") the text stands for, or null for a direct file URL. */
export function hubRepoOf(text: string): string | null {
  const s = text.trim()
  const web =
    /^https?:\/\/(?:www\.)?huggingface\.co\/([^/\s]+\/[^/?#\s]+)(?:\/(?:tree|blob|resolve)\/.*)?\/?$/i.exec(s)
  if (web && !/\.gguf(?:[?#].*)?$/i.test(s)) return web[1]
  if (/^https?:\/\//i.test(s)) return null
  return s.replace(/^hf:/i, '')
}
