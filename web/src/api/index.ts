import type { AxiosInstance } from 'axios'
import type {
  ApiKey,
  ConversationSizes,
  ConvertResult,
  Device,
  Group,
  GroupInput,
  GroupMember,
  GroupMembers,
  HomeworkResult,
  HubListing,
  Job,
  Model,
  ModelPull,
  KeyScopes,
  PasswordReset,
  RedeemCode,
  Redemption,
  Role,
  Session,
  Upload,
  UsageRecord,
  User,
} from './types'

export interface UsageQuery {
  user_id?: number
  model?: string
  task?: string
  since?: number
  until?: number
  limit?: number
  offset?: number
}

function clean(q: object): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== '') out[k] = v as string | number
  }
  return out
}

/** Typed calls of the public HTTP API (SPEC §4). */
export function makeApi(http: AxiosInstance) {
  return {
    register: (username: string, password: string, email: string) =>
      http.post<Session>('/api/v1/auth/register', { username, password, email }).then((r) => r.data),
    login: (username: string, password: string) =>
      http.post<Session>('/api/v1/auth/login', { username, password }).then((r) => r.data),
    /** Every earlier session token of the user stops working: the returned session replaces the current one. */
    changePassword: (current_password: string, new_password: string) =>
      http.post<Session>('/api/v1/auth/password', { current_password, new_password }).then((r) => r.data),
    profile: () => http.get<{ user: User }>('/api/v1/auth/profile').then((r) => r.data.user),
    myUsage: (q: UsageQuery = {}) =>
      http
        .get<{ records: UsageRecord[]; total: number }>('/api/v1/auth/usage', { params: clean(q) })
        .then((r) => r.data),
    keys: () => http.get<{ keys: ApiKey[] }>('/api/v1/auth/keys').then((r) => r.data.keys),
    /** The answer carries the key's secret (`key`), the only time it is shown. */
    createKey: (name: string, scopes: KeyScopes = {}) =>
      http.post<ApiKey>('/api/v1/auth/keys', { name, ...scopes }).then((r) => r.data),
    deleteKey: (id: number) => http.delete(`/api/v1/auth/keys/${id}`).then(() => undefined),
    /** Redeems a code: tokens for the user, and the code's group joined when it has one. */
    redeem: (code: string) => http.post<Redemption>('/api/v1/auth/redeem', { code }).then((r) => r.data),

    // Groups (classes): a teacher's own, an admin's all.
    groups: () => http.get<{ groups: Group[] }>('/api/v1/groups').then((r) => r.data.groups),
    group: (id: number) => http.get<{ group: Group }>(`/api/v1/groups/${id}`).then((r) => r.data.group),
    createGroup: (body: GroupInput) =>
      http.post<{ group: Group }>('/api/v1/groups', body).then((r) => r.data.group),
    updateGroup: (id: number, body: GroupInput) =>
      http.patch<{ group: Group }>(`/api/v1/groups/${id}`, body).then((r) => r.data.group),
    deleteGroup: (id: number) => http.delete(`/api/v1/groups/${id}`).then(() => undefined),
    groupMembers: (id: number) => http.get<GroupMembers>(`/api/v1/groups/${id}/members`).then((r) => r.data),
    addGroupMember: (id: number, username: string) =>
      http
        .post<{ member: Pick<GroupMember, 'user_id' | 'username'> }>(`/api/v1/groups/${id}/members`, {
          username,
        })
        .then((r) => r.data.member),
    removeGroupMember: (id: number, username: string) =>
      http.delete(`/api/v1/groups/${id}/members/${encodeURIComponent(username)}`).then(() => undefined),
    /** Admins only: adds tokens to the group's pool; answers the new pool. */
    topUpGroupPool: (id: number, amount: number, reason: string) =>
      http
        .post<{ pool: number }>(`/api/v1/admin/groups/${id}/pool`, { amount, reason })
        .then((r) => r.data.pool),
    /** Moves tokens from the group's pool to a member. */
    grantFromPool: (id: number, username: string, amount: number, reason: string) =>
      http
        .post<{
          pool: number
          remaining_tokens: number
        }>(`/api/v1/groups/${id}/grant`, { username, amount, reason })
        .then((r) => r.data),
    /** An API key for a member (an exam key), with its secret shown once. */
    createExamKey: (id: number, username: string, name: string, scopes: KeyScopes = {}) =>
      http.post<ApiKey>(`/api/v1/groups/${id}/keys`, { username, name, ...scopes }).then((r) => r.data),
    /** Redemption codes, in plain text this once; a teacher's are paid from the group's pool. */
    createCodes: (body: { count: number; amount: number; group_id?: number; expires_at?: number }) =>
      http.post<{ codes: string[] }>('/api/v1/codes', body).then((r) => r.data.codes),
    codes: (groupId?: number) =>
      http
        .get<{ codes: RedeemCode[] }>('/api/v1/codes', { params: clean({ group_id: groupId }) })
        .then((r) => r.data.codes),

    models: () => http.get<{ models: Model[] }>('/api/v1/models').then((r) => r.data.models),
    // The models with the host's devices (administrators get them).
    modelsAndDevices: () =>
      http.get<{ models: Model[]; devices?: Device[] }>('/api/v1/models').then((r) => r.data),
    model: (name: string) =>
      http.get<Model>(`/api/v1/models/${encodeURIComponent(name)}`).then((r) => r.data),
    startModel: (name: string) =>
      http.post<Model>(`/api/v1/models/${encodeURIComponent(name)}/start`).then((r) => r.data),
    stopModel: (name: string) =>
      http.post<Model>(`/api/v1/models/${encodeURIComponent(name)}/stop`).then((r) => r.data),
    /** Deletes a model file from models.dir (refused while it runs). */
    deleteModel: (name: string) =>
      http.delete(`/api/v1/admin/models/${encodeURIComponent(name)}`).then(() => undefined),
    hubListing: (repo: string) =>
      http.get<HubListing>('/api/v1/admin/models/hub', { params: { repo } }).then((r) => r.data),
    startPull: (source: string) =>
      http.post<{ pull: ModelPull }>('/api/v1/admin/models/pull', { source }).then((r) => r.data.pull),
    pulls: () => http.get<{ pulls: ModelPull[] }>('/api/v1/admin/models/pulls').then((r) => r.data.pulls),
    cancelPull: (id: string) =>
      http
        .delete<{ pull: ModelPull }>(`/api/v1/admin/models/pulls/${encodeURIComponent(id)}`)
        .then((r) => r.data.pull),

    formats: () => http.get<Record<string, unknown>>('/api/v1/tasks/formats').then((r) => r.data),
    convert: (
      source_format: string,
      target_format: string,
      content: string,
      options?: Record<string, unknown>,
    ) =>
      http
        .post<ConvertResult>('/api/v1/tasks/convert', { source_format, target_format, content, options })
        .then((r) => r.data),
    homework: (body: {
      subject: string
      question: string
      answer: string
      grade_level: string
      reference_answer?: string
    }) => http.post<HomeworkResult>('/api/v1/tasks/homework', body).then((r) => r.data),

    upload: (file: File, onProgress?: (percent: number) => void) => {
      const form = new FormData()
      form.append('file', file)
      return http
        .post<Upload>('/api/v1/uploads', form, {
          onUploadProgress: (e) => onProgress?.(e.total ? Math.round((e.loaded / e.total) * 100) : 0),
        })
        .then((r) => r.data)
    },
    subtitle: (body: {
      content?: string
      upload_id?: string
      source_lang: string
      target_lang: string
      output_format: string
      bilingual: boolean
    }) => http.post<{ job_id: string }>('/api/v1/tasks/subtitle', body).then((r) => r.data),
    jobs: () =>
      http
        .get<{ jobs: Job[] } | Job[]>('/api/v1/jobs')
        .then((r) => (Array.isArray(r.data) ? r.data : r.data.jobs)),
    job: (id: string) => http.get<Job>(`/api/v1/jobs/${encodeURIComponent(id)}`).then((r) => r.data),
    jobResult: (id: string) =>
      http
        .get<Blob>(`/api/v1/jobs/${encodeURIComponent(id)}/result`, { responseType: 'blob' })
        .then((r) => ({ blob: r.data, disposition: String(r.headers['content-disposition'] ?? '') })),
    deleteJob: (id: string) => http.delete(`/api/v1/jobs/${encodeURIComponent(id)}`).then(() => undefined),

    adminUsers: (search: string, limit: number, offset: number) =>
      http
        .get<{ users: User[]; total: number }>('/api/v1/admin/users', {
          params: clean({ search, limit, offset }),
        })
        .then((r) => r.data),
    /** How much each user keeps in conversations: counts and sizes, never text. */
    adminConversationSizes: (userIds: number[]) =>
      http
        .get<{ users: ConversationSizes[] }>('/api/v1/admin/conversations', {
          params: { user_ids: userIds.join(',') },
        })
        .then((r) => r.data.users),
    adminTokens: (id: number, amount: number, reason: string) =>
      http
        .post<{ user: User }>(`/api/v1/admin/users/${id}/tokens`, { amount, reason })
        .then((r) => r.data.user),
    adminRole: (id: number, role: Role) =>
      http.post<{ user: User }>(`/api/v1/admin/users/${id}/role`, { role }).then((r) => r.data.user),
    adminDisable: (id: number, disabled: boolean) =>
      http.post<{ user: User }>(`/api/v1/admin/users/${id}/disable`, { disabled }).then((r) => r.data.user),
    /** Without a password the server generates one (returned once); the user's sessions end. */
    adminResetPassword: (id: number, body: { password?: string; must_change?: boolean } = {}) =>
      http.post<PasswordReset>(`/api/v1/admin/users/${id}/password`, body).then((r) => r.data),
    adminUsage: (q: UsageQuery) =>
      http
        .get<{ records: UsageRecord[]; total: number }>('/api/v1/admin/usage', { params: clean(q) })
        .then((r) => r.data),
  }
}

export type Api = ReturnType<typeof makeApi>
