// One place that turns the Hub's HTTP answers into HubErrors. The Hub says what went wrong in the
// X-Error-Code header (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound) and a JSON body
// {"error": "..."}; the status alone is ambiguous (an unknown repository answers 401 to a request
// without a token, so as not to reveal private repositories).

import { HubError } from './errors.js';

export type HubKind = 'model' | 'dataset';

/** What a request was about, for the messages. */
export interface HubTarget {
  repo: string;
  kind: HubKind;
  revision: string;
  endpoint: string;
  hasToken: boolean;
  file?: string;
}

/** The repository's web page, where gated repositories are requested. */
export function repoPage(t: Pick<HubTarget, 'repo' | 'kind' | 'endpoint'>): string {
  return `${t.endpoint.replace(/\/+$/, '')}/${t.kind === 'dataset' ? 'datasets/' : ''}${t.repo}`;
}

const TOKEN_HINT = 'create a read token at https://huggingface.co/settings/tokens and put it in the HF_TOKEN environment variable, in Finch\'s Settings, or pass --token to `finch pull`';

/** What the Hub said in a failed answer's body ({"error": ...} or text), '' when nothing readable. */
export async function serverMessage(res: Response): Promise<string> {
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text) as { error?: unknown; message?: unknown };
      return String(body.error ?? body.message ?? '');
    } catch {
      return text.slice(0, 200);
    }
  } catch {
    return ''; // the body could not be read: the status and header still say enough
  }
}

/** The HubError for a failed answer; reads the body for the Hub's own message. */
export async function errorFromResponse(res: Response, t: HubTarget): Promise<HubError> {
  const code = res.headers.get('x-error-code') ?? '';
  const said = await serverMessage(res).then((m) => (m ? ` (the Hub says: ${m})` : ''));
  const what = `${t.kind} ${t.repo}`;
  const page = repoPage(t);
  const status = res.status;

  if (code === 'GatedRepo' || ((status === 401 || status === 403) && /gated|restricted/i.test(said))) {
    if (status === 403 || t.hasToken) {
      return new HubError('forbidden', `${what} is gated and your token has not been granted access${said}`,
        `request access on ${page} (logged in as the token's owner) and wait for approval; a fine-grained token also needs "read access to public gated repos"`);
    }
    return new HubError('unauthorized', `${what} is gated: downloading it needs a Hugging Face token of an account that was granted access${said}`,
      `request access on ${page}, then ${TOKEN_HINT}`);
  }
  if (code === 'RevisionNotFound') {
    return new HubError('revision_not_found', `revision "${t.revision}" does not exist in ${what}${said}`,
      `use a branch, tag or commit listed on ${page}/tree/main (the default is "main")`);
  }
  if (code === 'EntryNotFound') {
    return new HubError('not_found', `${t.file ?? 'the file'} does not exist in ${what} at revision "${t.revision}"${said}`,
      `see the files on ${page}/tree/${encodeURIComponent(t.revision)}`);
  }
  if (code === 'RepoNotFound' || status === 404) {
    const other = t.kind === 'model' ? 'if it is a dataset, pull it as one (--dataset)' : 'if it is a model, pull it without --dataset';
    return new HubError('not_found', `${what} does not exist on ${t.endpoint}${said}`,
      `check the id (owner/name, as in ${page}); ${other}; a private repository needs a token: ${TOKEN_HINT}`);
  }
  if (status === 401) {
    return new HubError('unauthorized', `the Hub refused the request for ${what}${t.hasToken ? ': the token is invalid or expired' : ''}${said}`, TOKEN_HINT);
  }
  if (status === 403) {
    return new HubError('forbidden', `the Hub refused access to ${what}${said}`, `check on ${page} that your account may read it; ${TOKEN_HINT}`);
  }
  if (status === 429) {
    return new HubError('rate_limited', `the Hub is rate-limiting requests for ${what}${said}`, 'wait a few minutes and run the download again; a token raises the limit');
  }
  return new HubError('network', `the Hub answered ${status} ${res.statusText} for ${what}${t.file ? ` (${t.file})` : ''}${said}`,
    'the Hub may be unavailable; try again later (partial files are kept and resumed)');
}

/** A HubError for a fetch that threw: cancelled by the signal, or a network failure. */
export function errorFromThrown(e: unknown, t: HubTarget, signal: AbortSignal | undefined): HubError {
  if (e instanceof HubError) return e;
  if (signal?.aborted) return new HubError('cancelled', `download of ${t.kind} ${t.repo} cancelled`, 'run it again to resume where it stopped', { cause: e });
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const detail = err.cause?.code ?? err.cause?.message ?? err.message;
  return new HubError('network', `could not reach ${t.endpoint} for ${t.kind} ${t.repo}${t.file ? ` (${t.file})` : ''}: ${detail}`,
    'check the network connection (and HF_ENDPOINT if set); partial files are kept and the next run resumes them', { cause: e });
}

/** Waits `ms`, or rejects as soon as `signal` fires. */
export function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * fetch, tried twice more when no answer came at all (a kept-alive connection that the server
 * closed just as it was reused is the common case); a HubError when all tries fail.
 */
export async function fetchAnswer(input: string | URL | Request, init: RequestInit, t: HubTarget, signal: AbortSignal | undefined): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(input, { ...init, signal });
    } catch (e) {
      if (signal?.aborted || attempt >= 2) throw errorFromThrown(e, t, signal);
      await delay(250 * 2 ** attempt, signal).catch(() => undefined);
    }
  }
}

/**
 * A fetch for @huggingface/hub's listing calls: adds the signal (the library takes none) and the
 * retries of fetchAnswer, and throws a HubError for any failed answer before the library's
 * generic error is built.
 */
export function hubFetch(t: HubTarget, signal: AbortSignal | undefined): typeof fetch {
  return async (input, init) => {
    const res = await fetchAnswer(input, init ?? {}, t, signal);
    if (!res.ok) throw await errorFromResponse(res, t);
    return res;
  };
}
