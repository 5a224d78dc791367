import { createApp } from 'vue'
import { createPinia } from 'pinia'
import ElementPlus from 'element-plus'
import 'element-plus/dist/index.css'
import App from './App.vue'
import { i18n } from './i18n'
import { router } from './router'
import { setSessionHooks } from './api/services'
import { useAuthStore } from './stores/auth'
import './style.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(router)
app.use(ElementPlus)

const auth = useAuthStore()
// A 401 on an authenticated call: the session is gone; back to login, keeping the target.
setSessionHooks(
  () => auth.token,
  () => {
    if (!auth.loggedIn) return
    auth.logout(true)
    const target = router.currentRoute.value
    if (target.name !== 'login') void router.push({ name: 'login', query: { redirect: target.fullPath } })
  },
)

app.mount('#app')
