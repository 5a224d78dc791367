import { describe, expect, it } from 'vitest'
import { jobDownloadable, jobFinished } from '@/utils/jobs'

describe('subtitle job states', () => {
  it('knows which statuses end a job', () => {
    for (const s of ['done', 'failed', 'cancelled', 'insufficient_tokens']) expect(jobFinished(s)).toBe(true)
    for (const s of ['queued', 'running', 'cancelling']) expect(jobFinished(s)).toBe(false)
  })

  it('offers a download for a done job and for the finished part of one that ran out of tokens', () => {
    const result = { download_url: '/api/v1/jobs/x/result', cues: 20 }
    expect(jobDownloadable({ job_id: 'x', status: 'done', result })).toBe(true)
    expect(jobDownloadable({ job_id: 'x', status: 'insufficient_tokens', result })).toBe(true)
    expect(jobDownloadable({ job_id: 'x', status: 'insufficient_tokens' })).toBe(false)
    expect(jobDownloadable({ job_id: 'x', status: 'failed', result })).toBe(false)
    expect(jobDownloadable({ job_id: 'x', status: 'running' })).toBe(false)
  })
})
