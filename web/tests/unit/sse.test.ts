import { describe, expect, it } from 'vitest'
import { SseParser } from '@/api/sse'

describe('SseParser', () => {
  it('splits events across chunk boundaries', () => {
    const p = new SseParser()
    expect(p.push('data: {"delta":"he')).toEqual([])
    expect(p.push('llo"}\n\nevent: progress\ndata: {"done":1}\n')).toEqual([
      { event: 'message', data: '{"delta":"hello"}' },
    ])
    expect(p.push('\n')).toEqual([{ event: 'progress', data: '{"done":1}' }])
  })

  it('joins multi-line data, ignores comments and handles CRLF', () => {
    const p = new SseParser()
    expect(p.push(': keep-alive\r\n\r\nevent: done\r\ndata: a\r\ndata: b\r\n\r\n')).toEqual([
      { event: 'done', data: 'a\nb' },
    ])
  })
})
