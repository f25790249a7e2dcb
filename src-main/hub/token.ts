// The one answer to "which Hugging Face token?" for every door (`finch pull`, `finch push`, the app,
// `finch serve`): the token given with the call (--token, a request's field), else the HF_TOKEN
// environment variable (an override, as huggingface_hub treats it), else the token saved in
// Finch's Settings (the token store under FINCH_HOME, store/token-store.ts). No token is an answer
// too (public downloads).
//
//   const token = await hubToken(values.token);                   // the CLI: FINCH_HOME's store
//   const token = await hubToken(req.token, tokens);              // the services: their own store

import { finchHome } from '../store/paths.js';
import { TokenStore, TokenUnreadableError } from '../store/token-store.js';

const given = (t: string | null | undefined): string | undefined => (t && t.trim() ? t.trim() : undefined);

/**
 * The token for a Hub call: `explicit`, else HF_TOKEN, else the one saved in `tokens` (default:
 * FINCH_HOME's token store); undefined when there is none; blank counts as none. A saved token this
 * process cannot read (encrypted with the desktop app's keychain, read by the CLI) is skipped, with
 * `onUnreadable` told why.
 */
export async function hubToken(
  explicit?: string | null,
  tokens: TokenStore = new TokenStore(finchHome()),
  onUnreadable?: (why: string) => void,
): Promise<string | undefined> {
  const direct = given(explicit) ?? given(process.env.HF_TOKEN);
  if (direct) return direct;
  try {
    return given(await tokens.read());
  } catch (e) {
    if (!(e instanceof TokenUnreadableError)) throw e;
    onUnreadable?.(e.message);
    return undefined;
  }
}
