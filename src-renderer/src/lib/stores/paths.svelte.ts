// The desktop app's native open dialog (browser mode has none and answers null).
import type { PickPathRequest } from '../../../../src-shared/api.ts';
import { finch } from '../services/finch.ts';

export function pickPath(kind: PickPathRequest['kind']): Promise<string | null> {
  return finch().pickPath({ kind });
}
