import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router'
import { useAuthStore } from '@/stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    admin?: boolean
    /** For teachers and admins (the groups they manage). */
    teacher?: boolean
    title?: string
  }
}

export const routes = [
  { path: '/login', name: 'login', component: () => import('@/views/LoginView.vue'), meta: { public: true } },
  {
    path: '/',
    component: () => import('@/components/AppLayout.vue'),
    children: [
      {
        path: '',
        name: 'dashboard',
        component: () => import('@/views/DashboardView.vue'),
        meta: { title: 'nav.dashboard' },
      },
      {
        path: 'chat',
        name: 'chat',
        component: () => import('@/views/ChatView.vue'),
        meta: { title: 'nav.chat' },
      },
      {
        path: 'convert',
        name: 'convert',
        component: () => import('@/views/ConvertView.vue'),
        meta: { title: 'nav.convert' },
      },
      {
        path: 'homework',
        name: 'homework',
        component: () => import('@/views/HomeworkView.vue'),
        meta: { title: 'nav.homework' },
      },
      {
        path: 'subtitles',
        name: 'subtitles',
        component: () => import('@/views/SubtitlesView.vue'),
        meta: { title: 'nav.subtitles' },
      },
      {
        path: 'keys',
        name: 'keys',
        component: () => import('@/views/KeysView.vue'),
        meta: { title: 'nav.keys' },
      },
      {
        path: 'groups',
        name: 'groups',
        component: () => import('@/views/GroupsView.vue'),
        meta: { teacher: true, title: 'nav.groups' },
      },
      {
        path: 'groups/:id(\\d+)',
        name: 'group',
        component: () => import('@/views/GroupDetailView.vue'),
        meta: { teacher: true, title: 'nav.groups' },
      },
      {
        path: 'admin/models',
        name: 'admin-models',
        component: () => import('@/views/admin/ModelsView.vue'),
        meta: { admin: true, title: 'nav.models' },
      },
      {
        path: 'admin/users',
        name: 'admin-users',
        component: () => import('@/views/admin/UsersView.vue'),
        meta: { admin: true, title: 'nav.users' },
      },
      {
        path: 'admin/usage',
        name: 'admin-usage',
        component: () => import('@/views/admin/UsageView.vue'),
        meta: { admin: true, title: 'nav.usage' },
      },
      { path: ':rest(.*)*', name: 'not-found', component: () => import('@/views/NotFoundView.vue') },
    ],
  },
]

/**
 * The guard: public pages for everyone, the rest needs a session, admin pages need the admin role,
 * teacher pages the teacher or admin role.
 */
export function guard(to: RouteLocationNormalized) {
  const auth = useAuthStore()
  if (to.meta.public) {
    if (to.name === 'login' && auth.loggedIn) return { name: 'dashboard' }
    return true
  }
  if (!auth.loggedIn) return { name: 'login', query: { redirect: to.fullPath } }
  if (to.meta.admin && !auth.isAdmin) return { name: 'dashboard' }
  if (to.meta.teacher && !auth.isTeacherOrAdmin) return { name: 'dashboard' }
  return true
}

export const router = createRouter({ history: createWebHistory(), routes })
router.beforeEach(guard)
