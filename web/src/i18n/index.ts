import { createI18n } from 'vue-i18n'
import en from './en'
import zh from './zh-CN'
import { initialLocale } from '@/stores/settings'

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { 'zh-CN': zh, en },
})
