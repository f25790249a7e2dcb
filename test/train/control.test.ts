// Pause and cancel in every phase of a run (train/control.ts), through the one way into training:
// a run asked to stop in a phase ends there, 'cancelled', before any later phase begins, keeping
// the steps it took; one asked to pause holds at a boundary of that phase (saying so) and goes on
// when resumed; and a run that fails in any phase releases every ORT session and device tensor it
// had (counted before and after, on WebGPU with the LoRA state on the device). Each run is driven
// by the trainer's onPhase hook, which acts the moment a phase begins: no timers.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DeviceTensor, Session } from '../../src-main/engine/runtime/session.js';
import { latestCheckpoint, readState } from '../../src-main/train/checkpoint.js';
import { type TrainControl, train } from '../../src-main/train/trainer.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import { TRAIN_PHASES, type TrainEvent, type TrainPhase } from '../../src-shared/train-events.js';
import { mathRows, tempDir, tinyCheckpoint, useFinchHome, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
const restoreHome = useFinchHome(join(work, 'home')); // the 4-bit weight cache
after(() => { restoreHome(); rmSync(work, { recursive: true, force: true }); });
const data = writeJsonl(join(work, 'math.jsonl'), mathRows(40));

// 4 steps; evaluation and a checkpoint after step 2 and step 4: every phase happens.
const config = (out: string, over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TRAIN_DEFAULTS, model, data, out: join(work, out), map: { prompt: 'query', completion: 'response' }, quantize: true,
  batch: 4, lr: 5e-3, maxSteps: 4, valFraction: 0.1, evalEvery: 2, checkpointEvery: 2, seed: 3, threads: 1, provider: 'cpu', ...over,
});

/** The step a phase is first entered at, in this config: the loop's phases come after step 2. */
const FIRST_STEP: Record<TrainPhase, number> = { loading: 0, quantizing: 0, data: 0, graphs: 0, sessions: 0, training: 0, evaluating: 2, checkpoint: 2 };

interface Run { events: TrainEvent[]; error: unknown }

/** Trains cfg; `atPhase` runs as each phase begins (the trainer waits for it). */
async function run(cfg: TrainConfig, control: TrainControl, atPhase: (phase: TrainPhase, step: number) => void, onEvent?: (e: TrainEvent) => void): Promise<Run> {
  const events: TrainEvent[] = [];
  let error: unknown = null;
  await train(cfg, (e) => { events.push(e); onEvent?.(e); }, control, { hooks: { onPhase: atPhase } }).catch((e: unknown) => { error = e; });
  return { events, error };
}

const phases = (r: Run) => r.events.filter((e) => e.event === 'phase').map((e) => (e as { phase: TrainPhase }).phase);
const last = <K extends TrainEvent['event']>(r: Run, k: K) => r.events.filter((e) => e.event === k).at(-1) as Extract<TrainEvent, { event: K }> | undefined;

test('a run goes through every phase, in order, and completes', async () => {
  const r = await run(config('all'), { paused: false, cancelled: false }, () => {});
  assert.equal(r.error, null);
  assert.deepEqual([...new Set(phases(r))], [...TRAIN_PHASES]);
  assert.deepEqual(phases(r), ['loading', 'quantizing', 'data', 'graphs', 'sessions', 'training', 'evaluating', 'checkpoint', 'training', 'evaluating', 'checkpoint']);
  assert.equal(last(r, 'done')?.status, 'completed');
});

for (const phase of TRAIN_PHASES) {
  test(`a cancel while ${phase} ends the run there: 'cancelled', no later phase, its steps kept, its sessions released`, async () => {
    const sessions = Session.live;
    const control: TrainControl = { paused: false, cancelled: false };
    const r = await run(config(`cancel-${phase}`), control, (p) => { if (p === phase) control.cancelled = true; });
    assert.equal(r.error, null);
    assert.equal(phases(r).at(-1), phase, `phases: ${phases(r).join(', ')}`);
    assert.equal(phases(r).indexOf(phase), phases(r).length - 1, 'cancelled the first time it was entered');
    const done = last(r, 'done')!;
    assert.equal(done.status, 'cancelled');
    assert.equal(done.steps, FIRST_STEP[phase]);
    assert.ok(!r.events.some((e) => e.event === 'step' && e.step > FIRST_STEP[phase]), 'no step after the cancel');
    // The steps taken are in a checkpoint (a cancelled run resumes where it stopped).
    const ck = latestCheckpoint(config(`cancel-${phase}`).out);
    assert.equal(ck ? readState(ck).step : 0, FIRST_STEP[phase]);
    assert.equal(done.adapter, ck ?? '');
    assert.equal(Session.live, sessions, 'every session released');
    const runJson = join(config(`cancel-${phase}`).out, 'run.json');
    if (existsSync(runJson)) assert.equal((JSON.parse(readFileSync(runJson, 'utf8')) as { status: string }).status, 'cancelled');
  });

  test(`a pause while ${phase} holds the run at a boundary of that phase, after saving its steps, until it is resumed`, async () => {
    const control: TrainControl = { paused: false, cancelled: false };
    let asked = false;
    const r = await run(config(`pause-${phase}`), control, (p) => {
      if (p === phase && !asked) { asked = true; control.paused = true; }
    }, (e) => { if (e.event === 'paused') control.paused = false; }); // resumed the moment it holds
    assert.equal(r.error, null);
    const paused = r.events.findIndex((e) => e.event === 'paused');
    assert.ok(paused > 0, 'it paused');
    assert.deepEqual(r.events[paused], { event: 'paused', step: FIRST_STEP[phase], phase });
    assert.deepEqual(r.events[paused + 1], { event: 'continued', step: FIRST_STEP[phase], phase });
    const entered = r.events.findIndex((e) => e.event === 'phase' && e.phase === phase);
    assert.ok(!r.events.slice(entered + 1, paused).some((e) => e.event === 'phase' || e.event === 'step'), 'held within the phase, before any other began');
    if (FIRST_STEP[phase] > 0) {
      // A pause in the loop checkpoints the steps taken first: a paused run loses nothing if Finch stops.
      assert.ok(r.events.slice(0, paused).some((e) => e.event === 'checkpoint' && e.step === FIRST_STEP[phase]), 'step 2 checkpointed before the pause');
    }
    assert.equal(last(r, 'done')?.status, 'completed');
    assert.equal(last(r, 'done')?.steps, 4);
  });
}

// On WebGPU with the LoRA state on the device, so that device tensors exist from the first step on.
for (const phase of TRAIN_PHASES) {
  test(`a failure while ${phase} releases every session and device tensor of the run (WebGPU)`, async () => {
    const sessions = Session.live, tensors = DeviceTensor.live;
    const r = await run(config(`fail-${phase}`, { provider: 'webgpu', strictProvider: true }), { paused: false, cancelled: false }, (p, step) => {
      if (p === phase && step === FIRST_STEP[phase]) throw new Error(`injected failure while ${p}`);
    });
    assert.match(String((r.error as Error)?.message), new RegExp(`injected failure while ${phase}`));
    assert.ok(!r.events.some((e) => e.event === 'done'));
    if (FIRST_STEP[phase] > 0) assert.ok(r.events.some((e) => e.event === 'step' && e.step === 2), 'it failed with its state on the device');
    assert.equal(Session.live, sessions, 'sessions released');
    assert.equal(DeviceTensor.live, tensors, 'device tensors freed');
  });
}

test('a cancel between two session creations releases the session already made', async () => {
  // Gradient accumulation: a gradient session, then an update session. The flag turns true once
  // the first exists, so the boundary before the second sees it.
  const sessions = Session.live;
  let inSessions = false;
  const control = { paused: false, get cancelled() { return inSessions && Session.live > sessions; } };
  const r = await run(config('between-sessions', { gradAccum: 2, batch: 2 }), control, (p) => { inSessions = p === 'sessions'; });
  assert.equal(r.error, null);
  assert.equal(last(r, 'done')?.status, 'cancelled');
  assert.ok(!r.events.some((e) => e.event === 'ready'), 'stopped before the run was ready');
  assert.equal(Session.live, sessions, 'the gradient session was released');
});

test('a resume whose checkpoint cannot be read fails naming the file, and releases the sessions opened for it', async () => {
  const cfg = config('unreadable', { maxSteps: 2 });
  const first = await run(cfg, { paused: false, cancelled: false }, () => {});
  assert.equal(last(first, 'done')?.status, 'completed');
  const ck = latestCheckpoint(cfg.out)!;
  rmSync(join(ck, 'optimizer.safetensors'));
  const sessions = Session.live;
  const again = await run({ ...cfg, maxSteps: 4 }, { paused: false, cancelled: false }, () => {});
  assert.match(String((again.error as Error)?.message), /optimizer\.safetensors/);
  assert.ok(again.events.some((e) => e.event === 'ready'), 'it failed after its sessions were made');
  assert.equal(Session.live, sessions, 'sessions released');
});
