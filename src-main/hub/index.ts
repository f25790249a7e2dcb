// Hugging Face Hub access for Finch: list and download model and dataset repositories into a cache
// folder under FINCH_HOME, with progress, cancel, resumable partial files and clear errors.
// The services layer and `finch pull` use only what this file exports.

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
