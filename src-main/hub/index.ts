// Hugging Face Hub access for Finch: list and download model and dataset repositories into a cache
// folder under FINCH_HOME, with progress, cancel, resumable partial files and clear errors; push an
// adapter, a merged model or a GGUF file with its model card as one commit, private until complete.
// The services layer, `finch pull` and `finch push` use only what this file exports.

export { HubError, type HubErrorCode } from './errors.js';
export {
  downloadRepo,
  PARQUET_CONVERSION,
  listDatasetFiles,
  type DownloadRepoOptions,
  type DownloadResult,
  type DownloadedFile,
  type SkippedFile,
  type DownloadProgress,
  type DatasetFile,
  type DatasetFormat,
} from './download.js';
export type { HubKind } from './http.js';
export { hubToken } from './token.js';
export { pushToHub, planPush, hubIdOf, type PushOptions, type PushPlan, type PushResult } from './push.js';
export { WRITE_TOKEN_HINT, type UploadPhase, type UploadProgress, type UploadResult } from './upload.js';
export type { CardFacts, ComparisonFacts, PushKind } from './card.js';
