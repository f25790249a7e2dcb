// The data pipeline's public surface: read a dataset file, detect and convert its format, template
// and tokenize with masks, split, pack, and batch; plus the wizard's preview.
//
//   read/        JSONL, JSON, CSV/TSV, Parquet readers (streaming, rows with line numbers)
//   formats.ts   alpaca, sharegpt, messages, completion, text; column maps
//   template.ts  chat template or fallback, prompt/completion masks, EOS
//   dataset.ts   prepareDataset(): the pipeline end to end, statistics, seeded split
//   batch.ts     packed sequences and padded batches (labels, masks, position and segment ids)
//   preview.ts   first rows with trained/ignored spans

export { DatasetError, RowError, BadRowLog, type BadRowPolicy, type BadRow } from './errors.js';
export { openRows, fileKindOf, FILE_KINDS, type FileKind, type ReadOptions, type Row, type RowRecord } from './read/index.js';
export {
  FORMAT_NAMES, FIELDS, resolveFormat, toExample, parseColumnMap, formatColumnMap, suggestMap, describeFormats,
  type FormatName, type Field, type ColumnMap, type ResolvedFormat, type FormatOptions,
} from './formats.js';
export {
  SampleEncoder, encodeGenerationPrompt, renderFallback, FALLBACK_TEMPLATE, FALLBACK_TEMPLATE_NAME,
  type TrainOn, type TemplateChoice, type EncodeOptions, type EncodedSample,
} from './template.js';
export { prepareDataset, readExamples, describeLengths, type PrepareOptions, type PreparedDataset, type DatasetStats, type LengthStats } from './dataset.js';
export { SequenceSet, buildSequences, type Batch, type BatchOptions, type IdArray } from './batch.js';
export { SampleStore } from './samples.js';
export { previewDataset, type DatasetPreview, type PreviewRow, type PreviewOptions, type Span } from './preview.js';
export { shuffledIndices } from './random.js';
export { isChat, type Example, type ChatMessage } from './types.js';
