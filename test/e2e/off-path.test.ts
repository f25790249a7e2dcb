/// <reference lib="dom" />
// End to end in Chromium against `finch serve`, off the happy path, as people really go:
//  - a local model folder that is not the demo (a tiny checkpoint written by the test);
//  - a dataset whose columns need mapping (query/response): Next waits until the mapping is chosen;
//  - invalid settings (rank 0, learning rate 5) refused under their fields, with the schema's limits;
//  - Back keeps every choice (model, mapping, settings);
//  - the server stopped in the middle of a run (the job held at a step, e2e-serve.ts: no race)
//    and started again: the run shows 'interrupted', and Resume finishes it;
//  - pause, resume and cancel from the dashboard, on a run far too long to end by itself.
// axe-core scans each new screen; PNGs go to test-artifacts/e2e/ (off-*.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { assertAccessible, failed, freePort, openBrowser, shot, startServe, type ServeProcess } from '../helpers/browser.js';
import { need } from '../helpers/prerequisites.js';

/** Rows with columns no format knows: a mapping (prompt <- query, completion <- response) reads them. */
function writeQueryResponse(file: string, n: number): void {
  const rows = Array.from({ length: n }, (_, i) => {
    const a = 2 + (i % 17), b = 1 + ((i * 7) % 13);
    return JSON.stringify({ query: `What is ${a} plus ${b}?`, response: `${a} + ${b} = ${a + b}. The answer is ${a + b}.` });
  });
  writeFileSync(file, `${rows.join('\n')}\n`);
}

test('off the happy path: a local model, a mapped dataset, refused settings, Back, a server restart mid-run, pause/resume/cancel', { timeout: 540_000 }, async (t) => {
  if (!need(t, 'chromium')) return;
  const work = mkdtempSync(join(tmpdir(), 'finch-e2e-off-'));
  const home = join(work, 'home');
  const modelDir = join(work, 'models', 'tiny-llama');
  writeSyntheticCheckpoint(modelDir, { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 512 });
  const dataFile = join(work, 'sums.jsonl');
  writeQueryResponse(dataFile, 64);
  const holdFile = join(work, 'hold');

  const servers: (ServeProcess | null)[] = [];
  let browser: Browser | null = null;
  let page: Page | null = null;
  try {
    let server = await startServe(home, await freePort(), { holdFile });
    servers.push(server);
    const opened = await openBrowser();
    browser = opened.browser;
    page = opened.page;
    const p = page;
    const badge = (status: string, timeout = 120_000) => p.locator('h1 .badge', { hasText: status }).waitFor({ timeout });
    const logLine = (text: string | RegExp, timeout = 120_000) => p.getByRole('log', { name: 'Run log' }).getByText(text).first().waitFor({ timeout });
    const knob = async (name: RegExp, value: string) => {
      const input = p.getByRole('spinbutton', { name });
      await input.fill(value);
      await input.blur(); // knobs apply on change
    };

    // ---- Model: a folder on this computer ----------------------------------------------------------
    await p.goto(server.url);
    await p.getByRole('link', { name: 'New fine-tune' }).first().click();
    await p.getByLabel(/^Model folder/).fill(modelDir);
    await p.getByRole('button', { name: 'Add folder' }).click();
    const chosen = p.getByLabel('Chosen model');
    await chosen.getByRole('heading', { name: 'tiny-llama', level: 3 }).waitFor({ timeout: 60_000 });
    assert.match(await chosen.textContent() ?? '', /Llama \(llama\): 2 layers, hidden 64, 4\/2 heads/);
    assert.ok(await p.getByRole('radio', { name: /tiny-llama/ }).isChecked(), 'the added model is the chosen one');
    await assertAccessible(p, 'wizard: a local model folder');
    await shot(p, 'off-01-local-model');

    // ---- Dataset: columns no format knows, mapped by hand ------------------------------------------
    await p.getByRole('button', { name: 'Next: Dataset' }).click();
    await p.getByText('Add a dataset file or download one from Hugging Face').click();
    await p.getByLabel(/^File/).fill(dataFile);
    await p.getByRole('button', { name: 'Add file' }).click();
    await p.getByText('needs a mapping').waitFor({ timeout: 60_000 });
    assert.match(await p.getByText(/cannot tell the dataset format from its columns/).textContent() ?? '', /columns found: query, response/);
    const nextSettings = p.getByRole('button', { name: 'Next: Settings' });
    assert.ok(await nextSettings.isDisabled(), 'Next waits for a mapping');
    await p.getByRole('status').filter({ hasText: 'Choose the format and its columns' }).waitFor();
    await assertAccessible(p, 'wizard: a dataset that needs a mapping');
    await shot(p, 'off-02-dataset-needs-mapping');

    await p.getByLabel('Format', { exact: true }).selectOption('completion');
    await p.getByTestId('detected-format').filter({ hasText: 'completion' }).waitFor({ timeout: 60_000 });
    assert.equal(await p.getByLabel('prompt column').inputValue(), 'query', 'the suggested column');
    await p.getByLabel('completion column').selectOption('response');
    await p.getByText(/mapped columns: prompt ← query, completion ← response/).waitFor();
    await p.getByLabel('Rendered training example').locator('span.trained').first().waitFor({ timeout: 60_000 });
    assert.ok(await nextSettings.isEnabled());
    await assertAccessible(p, 'wizard: the mapped dataset');
    await shot(p, 'off-03-dataset-mapped');

    // ---- Settings: values outside the schema's limits are refused where they are typed ----------------
    await nextSettings.click();
    await knob(/^Rank/, '0');
    await knob(/^Learning rate$/, '5');
    const rank = p.getByRole('spinbutton', { name: /^Rank/ });
    assert.equal(await rank.getAttribute('aria-invalid'), 'true');
    assert.equal(await p.locator(`#${await rank.getAttribute('aria-describedby')}`).textContent(), 'Must be an integer from 1 to 1024.');
    assert.equal(await p.locator('#k-lr-problem').textContent(), 'Must be a number > 0 and <= 1.');
    const nextReview = p.getByRole('button', { name: 'Next: Review and start' });
    assert.ok(await nextReview.isDisabled(), 'Review waits until the settings are valid');
    assert.match(await p.getByTestId('settings-refused').textContent() ?? '', /Fix 2 settings .*lora\.rank must be an integer from 1 to 1024.*lr must be a number > 0 and <= 1/s);
    await assertAccessible(p, 'wizard: refused settings');
    await shot(p, 'off-04-settings-refused');

    await knob(/^Rank/, '4');
    await knob(/^Learning rate$/, '0.003');
    await knob(/^Max steps/, '8');
    await knob(/^Batch size/, '2');
    await knob(/^Sequence length$/, '64');
    await p.getByTestId('setting-problem').first().waitFor({ state: 'detached' });
    assert.ok(await nextReview.isEnabled());

    // ---- Back keeps every choice ----------------------------------------------------------------------
    const back = p.getByRole('button', { name: 'Back' });
    await back.click();
    await p.getByTestId('detected-format').filter({ hasText: 'completion' }).waitFor();
    assert.equal(await p.getByLabel('Format', { exact: true }).inputValue(), 'completion');
    assert.deepEqual([await p.getByLabel('prompt column').inputValue(), await p.getByLabel('completion column').inputValue()], ['query', 'response']);
    await back.click();
    assert.ok(await p.getByRole('radio', { name: /tiny-llama/ }).isChecked(), 'the model is still chosen');
    await p.getByRole('button', { name: 'Next: Dataset' }).click();
    await nextSettings.click();
    const values = await Promise.all([/^Rank/, /^Learning rate$/, /^Max steps/, /^Batch size/, /^Sequence length$/].map((n) => p.getByRole('spinbutton', { name: n }).inputValue()));
    assert.deepEqual(values, ['4', '0.003', '8', '2', '64'], 'the settings as they were left');

    // ---- The server stops mid-run and starts again: interrupted, then Resume finishes it -------------
    await nextReview.click();
    await p.getByLabel('Run name').fill('stopped mid-run');
    writeFileSync(holdFile, '3'); // the job stops after step 3: the service still sees it training
    await p.getByRole('button', { name: 'Start fine-tuning' }).click();
    await p.getByRole('heading', { name: 'stopped mid-run', level: 1 }).waitFor();
    const runHash = new URL(p.url()).hash;
    await p.getByText('Step 3 of 8').waitFor({ timeout: 180_000 });
    await badge('running');
    await shot(p, 'off-05-held-mid-run');

    await server.stop();
    await p.getByRole('status').filter({ hasText: 'Lost the connection to Finch' }).waitFor({ timeout: 30_000 });
    server = await startServe(home, await freePort(), { holdFile });
    servers.push(server);
    await p.goto(`${server.url}${runHash}`);
    await badge('interrupted', 60_000);
    assert.equal(await p.getByTestId('interrupted-note').textContent().then((x) => x?.replace(/\s+/g, ' ').trim()),
      'Finch stopped while this run was training. It had no checkpoint yet: Resume trains it again from the start.', 'a checkpoint comes every 100 steps');
    const resume = p.getByRole('button', { name: 'Resume' });
    await resume.waitFor();
    await assertAccessible(p, 'run: interrupted by a server stop');
    await shot(p, 'off-06-interrupted');
    await resume.click();
    await logLine('resuming: no checkpoint yet, so training starts again from step 1');
    await badge('completed', 240_000);
    await p.getByText('Step 8 of 8').waitFor();
    // The steps trained again replace the ones before the stop (the chart follows a moment later).
    const lossChart = p.getByRole('img', { name: /^Training and eval loss by step\./ });
    await lossChart.and(p.getByRole('img', { name: /training loss: 8 points/ })).waitFor({ timeout: 10_000 })
      .catch(async () => assert.fail(`the loss chart shows the 8 steps of the resumed run within 10 s: ${await lossChart.getAttribute('aria-label')}`));
    await shot(p, 'off-07-resumed-completed');

    // ---- Pause, resume and cancel from the dashboard ------------------------------------------------
    // A clone of that run, far too long to finish by itself: every click lands while it trains.
    await p.getByRole('button', { name: 'Clone settings' }).click();
    await knob(/^Max steps/, '1000000');
    await p.getByRole('button', { name: 'Next: Review and start' }).click();
    await p.getByLabel('Run name').fill('paused and cancelled');
    await p.getByRole('button', { name: 'Start fine-tuning' }).click();
    await p.getByRole('heading', { name: 'paused and cancelled', level: 1 }).waitFor();
    await badge('running');
    await p.getByText(/^Step [1-9][\d,]* of 1,000,000$/).waitFor({ timeout: 180_000 });
    await p.getByRole('button', { name: 'Pause' }).click();
    await badge('paused');
    // The click lands between steps, or during an evaluation or checkpoint that follows one.
    const pausedLine = /paused (?:at step (\d+)|while (?:evaluating|writing a checkpoint) \(after step (\d+)\))/;
    await logLine(pausedLine);
    const pausedMatch = pausedLine.exec(await p.getByRole('log', { name: 'Run log' }).textContent() ?? '');
    const pausedAt = Number(pausedMatch?.[1] ?? pausedMatch?.[2]);
    assert.ok(pausedAt >= 1, `the run log names the step it paused at: ${pausedMatch?.[0]}`);
    await p.getByText(`Step ${pausedAt.toLocaleString('en-US')} of 1,000,000`).waitFor();
    await assertAccessible(p, 'run: paused from the dashboard');
    await shot(p, 'off-08-paused');
    await p.getByRole('button', { name: 'Resume' }).click();
    await badge('running');
    await logLine(`continued at step ${pausedAt}`);
    await p.getByRole('button', { name: 'Cancel' }).click();
    await badge('cancelled');
    assert.equal(await p.getByRole('button', { name: 'Resume' }).count(), 1, 'a cancelled run can be resumed');
    await shot(p, 'off-09-cancelled');
    assert.deepEqual(opened.pageErrors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(e)), [], 'no errors in the page console (but the lost connection while the server was down)');
  } catch (e) {
    throw await failed(e, 'off-path', page, servers);
  } finally {
    await browser?.close();
    for (const s of servers) await s?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
