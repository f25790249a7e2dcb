// `--provider` and `--strict-provider`, shared by the commands that run graphs (eval, generate,
// demo, bench train; train reads them through its config): parsing, resolving and one line saying
// what was chosen and why.

import { type ProviderChoice, type ProviderDecision, parseProviderChoice, resolveProvider } from '../engine/runtime/providers.js';
import { settingLine } from './run-options.js';

export const PROVIDER_OPTIONS = {
  provider: { type: 'string', default: 'auto' },
  'strict-provider': { type: 'boolean', default: false },
} as const;

/** The two options' --help lines: the run settings' own (src-shared/run-config.ts), in these commands' column. */
export const PROVIDER_USAGE = `${settingLine('provider', 23)}\n${settingLine('strictProvider', 23)}`;

export interface ProviderFlags {
  provider: ProviderChoice;
  strict: boolean;
}

/** Validates the flags (throws with the flag named). */
export function providerFlags(values: { provider?: string; 'strict-provider'?: boolean }): ProviderFlags {
  return { provider: parseProviderChoice(values.provider ?? 'auto', '--provider'), strict: values['strict-provider'] === true };
}

/** Resolves the flags to a provider and logs the choice (stderr: stdout may carry --json). */
export async function chooseProvider(flags: ProviderFlags, log: (line: string) => void = (l) => console.error(l)): Promise<ProviderDecision & { strict: boolean }> {
  const d = await resolveProvider(flags.provider);
  const strict = flags.strict && d.provider !== 'cpu';
  log(`provider: ${d.provider}, ${d.reason}${strict ? ' [strict]' : ''}`);
  return { ...d, strict };
}
