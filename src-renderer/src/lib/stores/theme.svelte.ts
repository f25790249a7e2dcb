// Light or dark: follows the system until the person picks one, then remembers the choice.

export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'finch.theme';

class Theme {
  choice = $state<ThemeChoice>(read());
  systemDark = $state(typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches);
  readonly effective = $derived<'light' | 'dark'>(this.choice === 'system' ? (this.systemDark ? 'dark' : 'light') : this.choice);

  constructor() {
    if (typeof matchMedia === 'function') {
      matchMedia('(prefers-color-scheme: dark)').addEventListener?.('change', (e) => { this.systemDark = e.matches; });
    }
  }

  set(choice: ThemeChoice): void {
    this.choice = choice;
    try { localStorage.setItem(KEY, choice); } catch { /* storage may be off; the choice lasts this session */ }
  }

  toggle(): void {
    this.set(this.effective === 'dark' ? 'light' : 'dark');
  }
}

function read(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    if (v === 'light' || v === 'dark' || v === 'system') return v;
  } catch { /* no storage */ }
  return 'system';
}

export const theme = new Theme();
