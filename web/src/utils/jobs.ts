import type { Job } from '@/api/types'

// The statuses after which a job changes no more (the server's is_terminal).
const finishedStatuses = new Set(['done', 'failed', 'cancelled', 'insufficient_tokens'])

export function jobFinished(status: string): boolean {
  return finishedStatuses.has(status)
}

// Done, or stopped by the balance with the cues finished until then as its
// result (a job that ran out before its first batch has none).
export function jobDownloadable(j: Job): boolean {
  return j.status === 'done' || (j.status === 'insufficient_tokens' && j.result != null)
}
