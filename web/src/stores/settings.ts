import { defineStore } from 'pinia'
import { ref } from 'vue'

export type Locale = 'zh-CN' | 'en'
const kKey = 'llmd.locale'

export function initialLocale(): Locale {
  const saved = globalThis.localStorage?.getItem(kKey)
  return saved === 'en' || saved === 'zh-CN' ? saved : 'zh-CN'
}

export const useSettingsStore = defineStore('settings', () => {
  const locale = ref<Locale>(initialLocale())
  function setLocale(l: Locale): void {
    locale.value = l
    globalThis.localStorage?.setItem(kKey, l)
  }
  return { locale, setLocale }
})
