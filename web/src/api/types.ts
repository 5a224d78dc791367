export interface UsageTotals {
  calls: number
  prompt_tokens: number
  completion_tokens: number
  tokens_charged: number
}

/** teacher: manages the groups (classes) it owns; admin: everything. */
export type Role = 'user' | 'teacher' | 'admin'

/** How often an allowance or a key's budget starts again (in the group's time zone). */
export type Period = 'day' | 'week' | 'month'

export interface Allowance {
  amount: number
  period: Period
}

/** A group the user belongs to, as the profile lists it: its allowance with what is left of it now. */
export interface UserGroup {
  id: number
  name: string
  price_ratio: number
  /** null: every model. */
  models: string[] | null
  allowance: (Allowance & { left: number; resets_at: number }) | null
}

export interface User {
  id: number
  username: string
  email: string
  role: Role
  tokens: number
  disabled: boolean
  created_at: number
  usage?: UsageTotals
  /** The password was set by someone else (an admin reset, a generated first password): the UI asks for a new one. */
  must_change_password?: boolean
  /** The groups (classes) the user is a member of. */
  groups?: UserGroup[]
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

/** What an API key may do; every field left out is unlimited. */
export interface KeyScopes {
  /** Unix seconds; null: never expires. */
  expires_at?: number | null
  /** Tokens the key may spend; null: no budget beyond the account's balance. */
  budget?: number | null
  /** When the budget starts again; null: a one-off budget. */
  budget_period?: Period | null
  /** null: every model. */
  models?: string[] | null
  /** CIDR blocks the key is accepted from ("10.0.0.0/8"); null: anywhere. */
  subnets?: string[] | null
  /** Requests per minute; 0: no limit of its own. */
  rpm?: number
}

export interface ApiKey {
  id: number
  name: string
  prefix: string
  created_at: number
  last_used_at: number | null
  /** The secret, in the answer that created the key only. */
  key?: string
  expires_at?: number | null
  budget?: number | null
  budget_period?: Period | null
  budget_used?: number
  budget_resets_at?: number | null
  models?: string[] | null
  subnets?: string[] | null
  rpm?: number
  /** Set on an exam key a group's teacher made for a member. */
  group_id?: number | null
}

/** A group (class) with its owner, limits, allowance and token pool. */
export interface Group {
  id: number
  name: string
  owner: { id: number; username: string }
  /** null: every model. */
  models: string[] | null
  price_ratio: number
  /** 0: no limit. */
  rpm: number
  /** 0: no limit. */
  tpm: number
  allowance: Allowance | null
  /** IANA time zone the allowance periods follow. */
  time_zone: string
  /** Tokens the owner can grant to members or pay codes with. */
  pool: number
  members: number
  created_at: number
}

/** The body of POST/PATCH /api/v1/groups; price_ratio and owner are for admins only. */
export interface GroupInput {
  name?: string
  models?: string[] | null
  price_ratio?: number
  rpm?: number
  tpm?: number
  allowance?: Allowance | null
  time_zone?: string
  owner?: string
}

export interface GroupMember {
  user_id: number
  username: string
  tokens: number
  /** null when the group has no allowance. */
  allowance_left: number | null
  used_this_period: number
}

export interface GroupMembers {
  members: GroupMember[]
  /** The current allowance period; null when the group has no allowance. */
  period: { start: number; resets_at: number } | null
}

/** A redemption code as listed (its text is shown once, when it is made). */
export interface RedeemCode {
  id: number
  prefix: string
  amount: number
  group_id: number | null
  created_at: number
  expires_at: number | null
  /** Who redeemed it: a user id, a username or both, depending on the server; null while unused. */
  redeemed_by: number | string | { id: number; username: string } | null
  redeemed_at: number | null
}

export interface Redemption {
  tokens_added: number
  remaining_tokens: number
  /** The group the code made the user a member of. */
  group: { id: number; name: string } | null
}

// A compute device of the host, or what an instance holds on one (used_bytes).
export interface Device {
  name: string
  description: string
  type: 'cpu' | 'gpu' | 'igpu' | 'accel' | string
  memory_total: number
  memory_free: number
  used_bytes?: number
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
  // Admins only, once the worker has said where its model went.
  gpu_layers?: number
  devices?: Device[]
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
  // Requests in line for a free slot (users take turns).
  waiting?: number
  aliases?: string[]
  pinned?: boolean
  preload?: boolean
  // What the chat template can do (supports_tools, supports_thinking, …), once the model has run.
  template_caps?: Record<string, boolean>
  // Admins only: the GGUF's file name.
  file?: string
  // Admins only: a file found in models.dir that DELETE /api/v1/admin/models/{name} may remove.
  deletable?: boolean
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

/** A conversation as the sidebar lists it (GET /api/v1/conversations), newest first. */
export interface ConversationSummary {
  id: string
  title: string
  model: string
  updated_at: number
  message_count: number
}

export interface ConversationPage {
  items: ConversationSummary[]
  /** Pass back as `cursor` for the next page; null on the last one. */
  next_cursor: string | null
}

/** How an assistant reply ended; `pending` while it is still being generated (possibly in another tab). */
export type FinishReason = 'stop' | 'length' | 'stopped' | 'error' | 'pending'

export interface ConversationMessage {
  id: number
  role: 'user' | 'assistant'
  content: string
  reasoning_content?: string
  model: string
  usage: ChatUsage | null
  tokens_consumed: number
  finish_reason: FinishReason | null
  created_at: number
}

export interface Conversation extends ConversationSummary {
  system?: string | null
  created_at: number
  messages: ConversationMessage[]
}

export interface ConversationImport {
  /** The first imported conversation. */
  id: string
  ids: string[]
}

/** What one chat request asks of a stored conversation: a new message, a new last reply, or an edit. */
export type ChatTurn =
  | { kind: 'send'; message: string }
  | { kind: 'regenerate' }
  | { kind: 'edit'; messageId: number; message: string }

/** The data of one chat SSE event: a delta, a reasoning delta, the final `done` (with the stored ids), or an error. */
export interface ChatStreamData {
  delta?: string
  reasoning_delta?: string
  done?: boolean
  usage?: ChatUsage
  tokens_consumed?: number
  remaining_tokens?: number | null
  conversation_id?: string
  message_id?: number
  user_message_id?: number
  title?: string
  error?: { code?: string; message?: string }
}

/** What an administrator sees of one user's conversations. */
export interface ConversationSizes {
  user_id: number
  conversations: number
  messages: number
  bytes: number
}

/** A model download started by an admin (POST /api/v1/admin/models/pull). */
export interface ModelPull {
  id: string
  source: string
  state: 'queued' | 'resolving' | 'downloading' | 'done' | 'failed' | 'cancelled'
  files: string[]
  model: string
  done: number
  total: number
  resumed_from: number
  bytes_per_second: number
  eta_seconds: number | null
  error?: { message: string; reason: string }
  created_at: number
}

export interface HubQuantisation {
  name: string
  size?: number
  files?: string[]
  source?: string
  error?: string
}

/** A Hugging Face repository's GGUF quantisations (GET /api/v1/admin/models/hub). */
export interface HubListing {
  repo: string
  revision: string
  default_quantisation: string
  quantisations: HubQuantisation[]
}
