// The canonical example every dataset format converts to: a conversation, or raw text.

import type { ChatMessage } from '../model/types.js';

export type { ChatMessage } from '../model/types.js';

export type Example = { messages: ChatMessage[] } | { text: string };

export function isChat(e: Example): e is { messages: ChatMessage[] } {
  return 'messages' in e;
}
