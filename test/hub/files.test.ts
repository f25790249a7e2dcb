// Which repository files Finch takes: split names in paths, data formats, safe paths, pickle, and
// the weight shards chosen from the safetensors index.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { datasetFormat, inferSplit, isPickle, isSafeRelativePath, modelSupportFiles, weightFiles } from '../../src-main/hub/files.js';

test('inferSplit reads train / validation / test from file names first, then folders, as `datasets` does', () => {
  const cases: [string, string | undefined][] = [
    ['data/train-00000-of-00002.parquet', 'train'],
    ['train.jsonl', 'train'],
    ['training_set.csv', 'train'],
    ['data/validation-00000-of-00001.parquet', 'validation'],
    ['dev.jsonl', 'validation'],
    ['val.csv', 'validation'],
    ['test.json', 'test'],
    ['eval/part-0.parquet', 'test'],
    ['train/part-0.parquet', 'train'],
    ['MetaMathQA-395K.json', undefined],
    ['trainer_state.json', undefined], // "trainer" is not "train"
    ['contest.jsonl', undefined], // "test" inside a word
    ['train_test_pairs.json', undefined], // ambiguous
  ];
  for (const [path, split] of cases) assert.equal(inferSplit(path), split, path);
});

test('datasetFormat: the readers\' formats by extension; metadata and other files are not data', () => {
  assert.equal(datasetFormat('a/b.parquet'), 'parquet');
  assert.equal(datasetFormat('x.JSONL'), 'jsonl');
  assert.equal(datasetFormat('x.ndjson'), 'jsonl');
  assert.equal(datasetFormat('x.json'), 'json');
  assert.equal(datasetFormat('x.csv'), 'csv');
  assert.equal(datasetFormat('x.tsv'), 'tsv');
  for (const p of ['README.md', 'dataset_infos.json', 'sub/dataset_info.json', 'x.json.gz', 'loader.py', '.gitattributes']) assert.equal(datasetFormat(p), null, p);
});

test('pickle files and unsafe paths are recognised', () => {
  for (const p of ['pytorch_model.bin', 'original/consolidated.00.pth', 'optimizer.pt', 'x.pkl', 'x.ckpt', 'x.pickle']) assert.ok(isPickle(p), p);
  for (const p of ['model.safetensors', 'tokenizer.model', 'binary.json']) assert.ok(!isPickle(p), p);
  for (const p of ['../x', 'a/../../x', '/etc/passwd', 'C:/x', 'a\\b', 'a//b', './a', '']) assert.ok(!isSafeRelativePath(p), p);
  for (const p of ['a', 'data/train.parquet', '.gitattributes', 'a..b']) assert.ok(isSafeRelativePath(p), p);
});

test('model files: support files kept, pickle skipped with a note; weights from the index, else model.safetensors, else top-level safetensors', () => {
  const f = (path: string) => ({ path, size: 10 });
  const repo = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors.index.json',
    'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'consolidated.safetensors', 'pytorch_model.bin', 'onnx/model.onnx'].map(f);
  const { wanted, skipped } = modelSupportFiles(repo);
  assert.deepEqual(wanted.map((x) => x.path), ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors.index.json']);
  assert.deepEqual(skipped.map((x) => x.path), ['pytorch_model.bin', 'onnx/model.onnx']);
  assert.match(skipped[0]!.reason, /pickle/);
  const index = { weight_map: { a: 'model-00002-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } };
  assert.deepEqual(weightFiles(repo, index)!.map((x) => x.path), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  assert.equal(weightFiles(repo, { weight_map: { a: 'missing.safetensors' } })![0]!.size, -1, 'a shard the repository lacks is marked');
  assert.deepEqual(weightFiles([f('model.safetensors'), f('consolidated.safetensors')], null)!.map((x) => x.path), ['model.safetensors']);
  assert.deepEqual(weightFiles([f('weights.safetensors'), f('sub/x.safetensors')], null)!.map((x) => x.path), ['weights.safetensors']);
  assert.equal(weightFiles([f('pytorch_model.bin')], null), null);
});
