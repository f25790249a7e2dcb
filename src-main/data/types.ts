// The canonical example every dataset format converts to: a conversation, raw text, or a preference
// pair (the prompt turns and two answers to them, the preferred one first).

import type { ChatMessage } from '../model/types.js';

export type { ChatMessage } from '../model/types.js';

/** A prompt and two answers to it: `chosen` is preferred over `rejected`. Each answer ends with an assistant turn. */
export interface PreferencePair {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
}

export type Example = { messages: ChatMessage[] } | { text: string } | PreferencePair;

export function isChat(e: Example): e is { messages: ChatMessage[] } {
  return 'messages' in e;
}

export function isPreference(e: Example): e is PreferencePair {
  return 'chosen' in e;
}
