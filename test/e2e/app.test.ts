/// <reference lib="dom" />
// End to end: `finch serve` with a fresh FINCH_HOME, driven by Debian's Chromium (headless, no
// network but 127.0.0.1) through the whole app: the demo model, the demo dataset's preview, the
// settings with the memory verdict, a short run whose chart shows points, the compare view with
// base and tuned answers that differ, a saved comparison, batch compare, and the run in history
// after a reload, the run's 4-bit weight cache entry removed from Home (its file is gone), and a
// Hugging Face token saved in Settings (a private file, never the database; the screen says so).
// axe-core scans every screen (no serious or critical violations) and every screen is saved as a
// PNG under test-artifacts/e2e/ for a person to look at.
//
// Skipped only where Chromium is missing and CI is not set; on CI a missing browser fails
// (test/helpers/prerequisites.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { accentPixels, assertAccessible, failed, freePort, openBrowser, shot, startServe, type ServeProcess } from '../helpers/browser.js';
import { need } from '../helpers/prerequisites.js';

test('the app end to end in Chromium', { timeout: 300_000 }, async (t) => {
  if (!need(t, 'chromium')) return;
  const home = mkdtempSync(join(tmpdir(), 'finch-e2e-'));
  let server: ServeProcess | null = null;
  let browser: Browser | null = null;
  let lastPage: Page | null = null; // for a screenshot when a step fails
  try {
    server = await startServe(home, await freePort());
    const opened = await openBrowser();
    browser = opened.browser;
    const { page, pageErrors } = opened;
    lastPage = page;

    // ---- Home ---------------------------------------------------------------------------------
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    await page.getByRole('button', { name: 'Try the demo' }).waitFor();
    await assertAccessible(page, 'home (empty)');
    await shot(page, '01-home-empty');

    // ---- Wizard: model ---------------------------------------------------------------------------
    await page.getByRole('link', { name: 'New fine-tune' }).first().click();
    await page.getByRole('button', { name: 'Use the bundled demo model' }).click();
    await page.getByRole('heading', { name: /demo/i, level: 3 }).waitFor();
    await page.getByText('Loads in 4 bits').waitFor();
    await assertAccessible(page, 'wizard: model');
    await shot(page, '02-wizard-model');

    // ---- Wizard: dataset (preview, format, sample, histogram) -----------------------------------
    await page.getByRole('button', { name: 'Next: Dataset' }).click();
    await page.getByTestId('detected-format').waitFor({ timeout: 60_000 });
    const table = page.getByRole('table', { name: 'Dataset preview' });
    assert.ok(await table.locator('tbody tr').count() >= 3, 'the preview table shows rows');
    await page.getByLabel('Rendered training example').locator('span.trained').first().waitFor();
    await page.getByRole('img', { name: /Token lengths of \d+ rows/ }).waitFor();
    await assertAccessible(page, 'wizard: dataset');
    await shot(page, '03-wizard-dataset');

    // ---- Wizard: settings (preset, knobs, memory verdict) -----------------------------------------
    await page.getByRole('button', { name: 'Next: Settings' }).click();
    await page.getByRole('radio', { name: 'Balanced' }).check();
    // A short run at the demo's learning rate, with an eval halfway so samples appear.
    const knob = async (name: RegExp, value: string) => {
      const input = page.getByRole('spinbutton', { name });
      await input.fill(value);
      await input.blur(); // knobs apply on change
    };
    await knob(/^Max steps/, '40');
    await knob(/^Learning rate$/, '0.003');
    await knob(/^Evaluate every/, '20');
    await knob(/^Sequence length$/, '160');
    // QLoRA, as the demo recipe trains: the run's job quantizes the base once and keeps it in the weight cache.
    await page.getByRole('checkbox', { name: '4-bit base weights (QLoRA)' }).check();
    const verdict = page.getByTestId('memory-verdict');
    await verdict.waitFor({ timeout: 60_000 });
    assert.match(await verdict.getAttribute('data-verdict') ?? '', /^(fits|tight|will-not-fit)$/);
    assert.equal(await verdict.getAttribute('data-verdict'), 'fits', 'the demo model fits on any machine');
    await assertAccessible(page, 'wizard: settings');
    await shot(page, '04-wizard-settings');

    // ---- Review and start -----------------------------------------------------------------------
    await page.getByRole('button', { name: 'Next: Review and start' }).click();
    await page.getByLabel('Run name').fill('e2e short run');
    await assertAccessible(page, 'wizard: review');
    await shot(page, '05-wizard-review');
    await page.getByRole('button', { name: 'Start fine-tuning' }).click();

    // ---- Run dashboard ---------------------------------------------------------------------------
    await page.getByRole('heading', { name: 'e2e short run', level: 1 }).waitFor();
    const runUrl = page.url();
    const runBadge = page.locator('h1 .badge');
    await page.locator('h1 .badge', { hasText: /completed|failed|cancelled|interrupted/ }).waitFor({ timeout: 180_000 });
    assert.equal((await runBadge.textContent())?.trim(), 'completed', `the run ended ${await runBadge.textContent()}: ${await page.locator('[role=alert]').allTextContents()}`);
    const lossChart = page.getByRole('img', { name: /^Training and eval loss by step\./ });
    // The charts follow the steps a moment later (runs.svelte.ts CHART_REDRAW_MS).
    await lossChart.and(page.getByRole('img', { name: /training loss: (?:[2-9]\d|\d{3,}) points/ })).waitFor({ timeout: 10_000 })
      .catch(async () => assert.fail(`the loss chart has at least 20 points within 10 s of the end: ${await lossChart.getAttribute('aria-label')}`));
    const label = await lossChart.getAttribute('aria-label') ?? '';
    const points = Number(/training loss: (\d+) points/.exec(label)?.[1] ?? 0);
    assert.ok(points >= 20, `the loss chart has points (${label})`);
    assert.ok(await accentPixels(page, 'section[aria-labelledby=loss-title] canvas') > 50, 'the training-loss line is drawn on the canvas');
    await page.getByRole('heading', { name: /^Step \d+$/, level: 3 }).first().waitFor(); // sample answers at eval
    await assertAccessible(page, 'run dashboard');
    await shot(page, '06-run-dashboard');

    // ---- Compare: base vs tuned ------------------------------------------------------------------
    await page.getByRole('link', { name: 'Compare with base' }).click();
    await page.getByRole('heading', { name: 'Compare', level: 1 }).waitFor();
    const prompts = [
      'There are 15 tulips in a box. Emma puts in 5 more. How many tulips are in the box now?',
      'Omar has 12 pears. He loses 7 of them. How many pears does Omar have left?',
      'Jack has 16 strawberries. He gives 1 to Luke. How many strawberries does Jack have now?',
    ];
    let differ = false;
    for (const prompt of prompts) {
      await page.getByRole('button', { name: 'New chat' }).click();
      await page.getByLabel('Message to both models').fill(prompt);
      await page.getByRole('button', { name: 'Send to both' }).click();
      await page.getByRole('button', { name: 'Send to both' }).waitFor({ timeout: 120_000 }); // back from Stop: both sides done
      const left = (await page.getByTestId('answer-left').last().textContent())?.trim() ?? '';
      const right = (await page.getByTestId('answer-right').last().textContent())?.trim() ?? '';
      assert.ok(left.length > 0 && right.length > 0, `both sides answered (${JSON.stringify({ left, right })})`);
      if (left !== right) { differ = true; break; }
    }
    assert.ok(differ, 'base and tuned answers differ on at least one of the prompts');
    await assertAccessible(page, 'compare');
    await shot(page, '07-compare');

    // ---- Save the comparison ---------------------------------------------------------------------
    await page.getByRole('radio', { name: 'Right is better' }).check();
    await page.getByLabel('Notes').fill('The tuned model follows the answer format.');
    await page.getByRole('button', { name: 'Save comparison' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();

    // ---- Batch compare ----------------------------------------------------------------------------
    await page.getByLabel('Rows').fill('4');
    await page.getByRole('button', { name: 'Run batch compare' }).click();
    await page.getByText('Rows where they differ').waitFor({ timeout: 120_000 });
    await assertAccessible(page, 'compare with batch results');
    await shot(page, '08-compare-saved-batch');

    // ---- Dark theme --------------------------------------------------------------------------------
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await assertAccessible(page, 'compare (dark)');
    await shot(page, '09-compare-dark');
    await page.goto(runUrl);
    await page.getByRole('heading', { name: 'e2e short run', level: 1 }).waitFor();
    await page.locator('h1 .badge', { hasText: 'completed' }).waitFor();
    await assertAccessible(page, 'run dashboard (dark, reopened from the store)');
    await shot(page, '10-run-dark-reopened');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();

    // ---- Export & import ---------------------------------------------------------------------------
    await page.getByRole('link', { name: 'Export & import' }).click();
    await page.getByRole('heading', { name: 'Import a PEFT adapter' }).waitFor();
    const exportDir = join(home, 'exported-adapter');
    await page.getByLabel('Destination folder').first().fill(exportDir);
    await page.getByRole('button', { name: 'Export adapter' }).click();
    await page.getByRole('status').filter({ hasText: 'Wrote the PEFT adapter to' }).waitFor({ timeout: 60_000 });
    assert.ok(existsSync(join(exportDir, 'adapter_config.json')) && existsSync(join(exportDir, 'adapter_model.safetensors')), 'the PEFT adapter folder was written');
    await assertAccessible(page, 'export & import');
    await shot(page, '11-export-import');

    // ---- History after a reload ----------------------------------------------------------------------
    await page.goto(server.url);
    await page.reload();
    const row = page.locator('tr', { hasText: 'e2e short run' });
    await row.waitFor();
    assert.match(await row.textContent() ?? '', /completed/);
    await assertAccessible(page, 'home with history');
    await shot(page, '12-home-history');

    // ---- The run's 4-bit weight cache entry, removed from Home -------------------------------------------
    const cache = page.getByRole('region', { name: '4-bit weight cache' });
    const entry = cache.getByRole('row', { name: /Finch demo model/ });
    await entry.waitFor();
    const file = await entry.locator('[title$=".safetensors"]').getAttribute('title') ?? '';
    assert.ok(file.startsWith(join(home, 'cache', 'int4')) && existsSync(file), `the entry's file is in FINCH_HOME's cache: ${file}`);
    await entry.getByRole('button', { name: 'Remove the 4-bit weights of Finch demo model' }).click();
    const confirmRemove = cache.getByRole('group', { name: 'Confirm removing Finch demo model' }).getByRole('button', { name: /^Remove / });
    await confirmRemove.waitFor();
    await assertAccessible(page, 'home: removing a weight cache entry');
    await shot(page, '13-home-weight-cache-confirm');
    await confirmRemove.click();
    await entry.waitFor({ state: 'detached' });
    assert.ok(!existsSync(file), 'removing the entry in the app deleted its file');
    assert.equal(await cache.getByTestId('weight-cache-total').textContent(), '0 B in 0 entries');

    // ---- Settings: the Hugging Face token is kept out of the database, and the screen says where --------
    await page.getByRole('link', { name: 'Settings' }).click();
    const tokenStatus = page.getByTestId('token-status');
    await tokenStatus.filter({ hasText: 'No token is saved.' }).waitFor();
    const token = 'hf_e2eTokenNotARealOne0123456789';
    await page.getByLabel(/^Access token/).fill(token);
    await page.getByRole('button', { name: 'Save token' }).click();
    await page.getByRole('status').filter({ hasText: 'Token saved.' }).waitFor();
    assert.equal(await tokenStatus.getAttribute('data-storage'), 'file');
    assert.match(await tokenStatus.textContent() ?? '', /A token is saved, in a file only your user account can read \(.*\/secrets\/hf-token\)/);
    assert.equal(await page.getByLabel(/^Replace the token/).inputValue(), '', 'the field does not keep the token');
    const tokenFile = join(home, 'secrets', 'hf-token');
    assert.equal(readFileSync(tokenFile, 'utf8'), token);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    for (const f of ['finch.db', 'finch.db-wal']) {
      assert.ok(!existsSync(join(home, f)) || !readFileSync(join(home, f)).includes(token), `${f} does not hold the token`);
    }
    await assertAccessible(page, 'settings');
    await shot(page, '14-settings-token');

    assert.deepEqual(pageErrors, [], 'no errors in the page console');
  } catch (e) {
    throw await failed(e, 'app', lastPage, [server]);
  } finally {
    await browser?.close();
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
