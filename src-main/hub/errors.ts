// Every way a Hub download or upload can fail, as one error with a machine-readable `code`, a
// message that names the repository (and file or revision), and a `hint` that says what to do next.
// The services layer sends {code, message, hint} across the API as they are.

export type HubErrorCode =
  | 'unauthorized' // 401: no token, or a token the Hub does not accept (gated repos answer this)
  | 'forbidden' // 403: a valid token without access (gated repo not yet granted)
  | 'not_found' // the repository (or a file in it) does not exist
  | 'revision_not_found' // the branch, tag or commit does not exist in an existing repository
  | 'pickle_refused' // a pickle file (*.bin, *.pt, *.pth, *.pkl, *.ckpt) was asked for by name
  | 'no_weights' // a model repository without safetensors weights (only pickle, or nothing)
  | 'bad_request' // a malformed repository id, revision, path or token
  | 'no_space' // not enough free disk space for what is left to download
  | 'integrity' // a downloaded file's size or hash differs from what the Hub lists
  | 'cancelled' // the AbortSignal fired
  | 'busy' // this process is already transferring the same file, or pushing to the same repository
  | 'rate_limited' // 429
  | 'conflict' // an upload that does not fit the repository's state (a public repository asked to stay private, 409/412)
  | 'network'; // connection refused or cut, DNS, TLS, or a 5xx answer

export class HubError extends Error {
  override name = 'HubError';
  constructor(readonly code: HubErrorCode, message: string, readonly hint = '', options?: { cause?: unknown }) {
    super(message, options);
  }
}
