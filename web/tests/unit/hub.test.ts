import { describe, expect, it } from 'vitest'
import { hubRepoOf } from '@/utils/hub'

describe('hubRepoOf', () => {
  it('takes the repository from a name, an hf: name or its huggingface.co page', () => {
    expect(hubRepoOf('Qwen/Qwen2.5-0.5B-Instruct-GGUF')).toBe('Qwen/Qwen2.5-0.5B-Instruct-GGUF')
    expect(hubRepoOf('  hf:owner/repo ')).toBe('owner/repo')
    expect(hubRepoOf('https://huggingface.co/owner/repo')).toBe('owner/repo')
    expect(hubRepoOf('https://huggingface.co/owner/repo/tree/main')).toBe('owner/repo')
  })

  it('leaves a direct file URL alone', () => {
    expect(hubRepoOf('https://huggingface.co/owner/repo/resolve/main/model-Q4_K_M.gguf')).toBeNull()
    expect(hubRepoOf('http://mirror.lan/models/tiny.gguf')).toBeNull()
  })
})
