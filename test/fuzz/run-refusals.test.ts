// The fuzz corpus's runs that cannot work (issue 23 deliverable 3: startRun's refusals, unique run
// folders, resume without a folder, entries under FINCH_HOME/runs that are not runs, run.json
// checked like input), sent to a running `finch serve` under the watchdog and beside the other
// client of served.ts. The refusals are services/system.ts refuseUnfit and services/runs.ts
// (importCliRuns, resume, start), the readers of a run folder's files (train/checkpoint.ts
// readRunFile, services/demo.ts readDemoFile, both through util/regular-file.ts): each case
// checks their message, hint and field, and that a refused call left no run and no folder behind.
//
// Without those refusals startRun would queue the will-not-fit run (a terabyte of activations), so
// the test checks first that they are there (RunSettings has ignoreMemoryEstimate) and runs no case
// otherwise.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunSummary } from '../../src-shared/api.js';
import { TRAIN_DEFAULTS } from '../../src-shared/run-config.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { tempDir } from '../helpers/fixtures.js';
import { until } from '../helpers/wait.js';
import { deepJson, junk, makeBadFiles } from './bad-files.js';
import { type ApiCase, type CaseContext, PROBE, addThenBreak, config, fifo, runConfig, toZero } from './corpus.js';
import { runCorpus } from './served.js';

const runsFolder = (c: CaseContext) => join(c.home, 'runs');
const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function listRuns(c: CaseContext): Promise<RunSummary[]> {
  const a = await c.call('listRuns', []);
  assert.ok(Array.isArray(a.result), `listRuns: ${JSON.stringify(a.error)}`);
  return a.result as RunSummary[];
}

/** After a refused startRun: no run in the list, nothing in FINCH_HOME/runs. */
const leftNothing = async (c: CaseContext) => {
  assert.deepEqual((await listRuns(c)).map((r) => r.name), [], 'a refused run is not listed');
  assert.deepEqual(existsSync(runsFolder(c)) ? readdirSync(runsFolder(c)) : [], [], 'a refused run has no folder');
};

/** A run.json as `finch train` writes it at the start of a run of the corpus's good model and data in `dir` (at step 3 when it was killed). */
const runRecord = (c: CaseContext, dir: string, fields: object = {}, configFields: object = {}) =>
  JSON.stringify({ config: { ...TRAIN_DEFAULTS, model: c.at('good-model'), data: c.at('good.jsonl'), out: dir, ...configFields }, status: 'running', step: 3, ...fields });

/**
 * An entry `name` under FINCH_HOME/runs made by `make` (the path, the case context): listRuns
 * still answers, and the server logs the entry once, with why it is no run (`why`).
 */
const notARun = (name: string, found: string | undefined, make: (p: string, c: CaseContext) => void, why: RegExp): ApiCase => ({
  name: `listRuns with ${name.replace(/-/g, ' ')} under FINCH_HOME/runs: answered, the entry skipped with one log line`,
  ...(found ? { found } : {}),
  before: async (c) => {
    mkdirSync(runsFolder(c), { recursive: true });
    make(join(runsFolder(c), name), c);
  },
  call: () => ({ method: 'listRuns', params: [] }),
  expect: { ok: (v) => assert.ok(Array.isArray(v) && !(v as RunSummary[]).some((r) => r.name === name), `${name} is not listed`) },
  after: async (c) => {
    const line = `skipped ${literal(join(runsFolder(c), name))} in the runs folder: ${why.source}`;
    await until(() => new RegExp(line).test(c.stderr()), `the server to log "${line}"`, 5_000);
    await listRuns(c);
    await new Promise((r) => setTimeout(r, 200)); // the second listing's log line, if it wrote one, reaches the pipe
    assert.equal(c.stderr().match(new RegExp(line, 'g'))?.length, 1, 'the entry is logged once, not at every listing');
  },
});

const runFolder = (write: (runJson: string, dir: string, c: CaseContext) => void) => (dir: string, c: CaseContext) => {
  mkdirSync(dir);
  write(join(dir, 'run.json'), dir, c);
};

const RUN_CASES: ApiCase[] = [
  // ---- startRun refuses what cannot work, before a run or its folder exists ----------------------
  {
    name: 'startRun of a run whose estimate is "will-not-fit" is refused with the estimate and what to change',
    found: `${PROBE}: started a run needing 1,067,157 GiB`,
    before: addThenBreak('long-context', 'config.json', config({ max_position_embeddings: 131_072 })),
    call: (c) => ({ method: 'startRun', params: [runConfig(c.ids['long-context']!, c.ids.dataset!, { batch: 4096, seqLen: 131_072, provider: 'cpu' })] }),
    expect: { code: 'conflict', message: /this run needs about .+ of memory.*: it will not fit/, hint: /ignoreMemoryEstimate/, field: '0.ignoreMemoryEstimate' },
    after: leftNothing,
  },
  {
    name: 'startRun with seqLen beyond the model\'s max_position_embeddings is refused, naming the limit',
    found: `${PROBE}: failed after 36 s as internal: Invalid typed array length`,
    before: addThenBreak('short-context', 'config.json', config({ max_position_embeddings: 512 })),
    call: (c) => ({ method: 'startRun', params: [runConfig(c.ids['short-context']!, c.ids.dataset!, { seqLen: 131_072, provider: 'cpu' })] }),
    expect: { code: 'invalid_argument', message: /a sequence length of 131072 tokens is more than .* its max_position_embeddings is 512/, hint: /set the sequence length to 512 or less/, field: '0.seqLen' },
    after: leftNothing,
  },

  // ---- FINCH_HOME/runs holds what anyone put there -----------------------------------------------------
  notARun('a-dangling-link', `${PROBE}: listRuns failed with ENOENT`, (p) => symlinkSync('/nonexistent/finch-fuzz', p), /a link to nothing \(its target is gone\)/),
  notARun('a-plain-file', undefined, (p) => writeFileSync(p, 'notes'), /not a folder/),
  notARun('run-json-a-FIFO', undefined, runFolder((f) => fifo(f)), /.*run\.json is a FIFO/),
  notARun('demo-json-a-FIFO', undefined, runFolder((f, dir, c) => { writeFileSync(f, runRecord(c, dir)); fifo(join(dir, 'demo.json')); }), /.*demo\.json is a FIFO/),
  notARun('run-json-linked-to-dev-zero', undefined, runFolder((f) => toZero(f)), /.*run\.json is a character device/),
  notARun('run-json-of-binary-junk', undefined, runFolder((f) => writeFileSync(f, junk(4096, 7))), /.*run\.json: invalid JSON/),
  notARun('run-json-nested-100000-deep', undefined, runFolder((f) => writeFileSync(f, deepJson(100_000))), /.*run\.json: JSON nested deeper than 64/),
  notARun('run-json-an-array', undefined, runFolder((f) => writeFileSync(f, '[]')), /.*run\.json: not a JSON object/),
  notARun('run-json-with-an-unknown-status', undefined, runFolder((f, dir, c) => writeFileSync(f, runRecord(c, dir, { status: 'exploded' }))), /.*run\.json: status: /),
  notARun('run-json-whose-config-has-a-bad-field', undefined,
    runFolder((f, dir, c) => writeFileSync(f, runRecord(c, dir, {}, { lr: 'fast' }))), /.*run\.json: config\.lr: /),

  // ---- resume of a run whose folder is gone ----------------------------------------------------
  {
    name: 'resumeRun of a run whose folder was deleted is refused with what to do instead; the run stays as it was',
    limitMs: 60_000, // resumeRun first awaits the machine's probe
    before: async (c) => {
      const dir = join(runsFolder(c), 'cli-run-gone');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'run.json'), runRecord(c, dir));
      const run = (await listRuns(c)).find((r) => r.dir === dir);
      assert.ok(run, `listRuns imported ${dir}`);
      assert.equal(run.status, 'interrupted', 'a run.json that says running, from no live process: interrupted');
      c.ids['gone'] = run.id;
      rmSync(dir, { recursive: true });
    },
    call: (c) => ({ method: 'resumeRun', params: [c.ids['gone']] }),
    expect: { code: 'conflict', message: /the folder of run "cli-run-gone" is gone \(.*cli-run-gone\): its checkpoints went with it, so it cannot resume/, hint: /start it again from step 0/ },
    after: async (c) => assert.equal((await listRuns(c)).find((r) => r.id === c.ids['gone'])?.status, 'interrupted'),
  },

  // ---- last, as it starts jobs: two runs of one name in the same second get a folder each ---------
  {
    name: 'two startRun calls of one name at once get a folder each',
    parallel: 2,
    call: (c) => ({ method: 'startRun', params: [runConfig(c.ids.model!, c.ids.dataset!, { name: 'same name', maxSteps: 1, provider: 'cpu' })] }),
    expect: { ok: (v) => assert.ok((v as RunSummary).dir, 'a run folder') },
    after: async (c) => {
      const runs = (await listRuns(c)).filter((r) => r.name === 'same name');
      assert.equal(runs.length, 2, JSON.stringify(runs));
      assert.notEqual(runs[0]!.dir, runs[1]!.dir, 'each run has its own folder');
      for (const r of runs) {
        assert.ok(r.dir.startsWith(runsFolder(c)) && existsSync(r.dir), `${r.dir} exists under FINCH_HOME/runs`);
        const cancel = await c.call('cancelRun', [r.id]);
        assert.ok(cancel.result || /already (completed|cancelled|failed)/.test(cancel.error?.message ?? ''), `cancelRun: ${JSON.stringify(cancel.error)}`);
      }
    },
  },
];

test('fuzz corpus, runs that cannot work: startRun refuses them, the runs folder\'s junk is skipped, resume without a folder is refused; the server stays up', {
  skip: process.platform === 'win32' ? 'FIFOs and /dev/zero are POSIX' : false,
}, async (t) => {
  assert.ok('ignoreMemoryEstimate' in RUN_DEFAULTS,
    'startRun has no memory refusal here (RunSettings lacks ignoreMemoryEstimate): the refusals of issue 23 deliverable 3 (branch i19-lifecycle) are not merged, ' +
    'and without them the will-not-fit case would start a run needing a terabyte; no case was run');
  const root = tempDir('finch-fuzz-runs-');
  const closeSockets = await makeBadFiles(root, ['good-model', 'good.jsonl']);
  try {
    await runCorpus(t, { label: 'fuzz corpus, runs', cases: RUN_CASES, root, home: tempDir('finch-fuzz-runs-home-') });
  } finally {
    closeSockets();
  }
});
