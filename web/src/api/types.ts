export interface UsageTotals {
  calls: number
  prompt_tokens: number
  completion_tokens: number
  tokens_charged: number
}

export interface User {
  id: number
  username: string
  email: string
  role: 'user' | 'admin'
  tokens: number
  disabled: boolean
  created_at: number
  usage?: UsageTotals
  /** The password was set by someone else (an admin reset, a generated first password): the UI asks for a new one. */
  must_change_password?: boolean
}

export interface Session {
  token: string
  user: User
}

/** An administrator's password reset: the user, and the generated password when none was given (shown once). */
export interface PasswordReset {
  user: User
  password?: string
}

export interface ApiKey {
  id: number
  name: string
  prefix: string
  created_at: number
  last_used_at: number | null
  key?: string
}

// url and port are shown to administrators only.
export interface Instance {
  id: string
  url?: string
  status: string
  health?: string
  in_flight: number
  port?: number
  remote?: boolean
  restarts?: number
  error?: string
}

export type ModelStatus = 'available' | 'starting' | 'running' | 'stopping' | 'error'

export interface Model {
  name: string
  description: string
  status: ModelStatus
  size: number
  arch: string
  quantization: string
  context_length: number
  instances: Instance[]
  error?: string
}

export interface ChatUsage {
  prompt_tokens: number
  completion_tokens: number
}

export interface UsageRecord {
  id: number
  request_id: string
  user_id?: number
  route: string
  task: string
  model: string
  instance?: string
  prompt_tokens: number
  completion_tokens: number
  charged: number
  status: number
  latency_ms: number
  created_at: number
}

export interface ConvertResult {
  success: boolean
  converted_content: string
  method: 'parser' | 'model'
  tokens_consumed: number
  remaining_tokens: number
}

export interface HomeworkCheck {
  [k: string]: unknown
}

export interface HomeworkResult {
  success: boolean
  score: number
  correct: boolean
  feedback: string
  suggestions: string[]
  checks?: HomeworkCheck[]
  tokens_consumed: number
  remaining_tokens: number
}

export interface Upload {
  upload_id: string
  size: number
  sha256?: string
  name?: string
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | string

export interface JobProgress {
  done: number
  total: number
  percent: number
}

export interface Job {
  job_id: string
  status: JobStatus
  kind?: string
  progress?: JobProgress
  result?: unknown
  error?: { code?: string; message?: string } | string | null
  created_at?: number
}
