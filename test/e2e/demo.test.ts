/// <reference lib="dom" />
// End to end in Chromium against `finch serve`: "Try the demo" clicked through to its result. The
// run trains on its dashboard, then the app goes on to Compare, where the demo's result is the
// first thing on the page: the held-out accuracy of the base and the tuned model on the problems
// `finch demo` scores (all 200 of the demo's test set, as the CLI prints it), and their answers side
// by side. The demo trains DEMO_STEPS steps here instead of its 300 (e2e-serve.ts), so the test fits
// a busy 2-core machine: the flow and the comparison are the app's own. axe-core scans each
// screen; PNGs go to test-artifacts/e2e/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ApiConnection } from '../../src-shared/ws-client.js';
import { DEMO_RECIPE, DEMO_TEST } from '../../src-main/services/demo.js';
import { assertAccessible, failed, freePort, openBrowser, serverApi, shot, startServe, type ServeProcess } from '../helpers/browser.js';
import { need } from '../helpers/prerequisites.js';

/** Steps of the demo's training in this test (the recipe: 300; its loss is below 0.5 by step 40). */
const DEMO_STEPS = 80;

test('Try the demo: the run, then its result greets the person on Compare', { timeout: 540_000 }, async (t) => {
  if (!need(t, 'chromium')) return;
  const home = mkdtempSync(join(tmpdir(), 'finch-e2e-demo-'));
  let server: ServeProcess | null = null;
  let browser: Browser | null = null;
  let api: ApiConnection | null = null;
  let page: Page | null = null;
  try {
    server = await startServe(home, await freePort(), { demoSteps: DEMO_STEPS });
    const opened = await openBrowser();
    browser = opened.browser;
    page = opened.page;
    api = await serverApi(server);

    await page.goto(server.url);
    await page.getByRole('button', { name: 'Try the demo' }).click();
    await page.getByRole('heading', { name: 'Demo: arithmetic word problems', level: 1 }).waitFor();
    const runId = decodeURIComponent(/#\/run\/([^/?]+)/.exec(page.url())?.[1] ?? '');
    assert.ok(runId, `the dashboard of the demo run opened (${page.url()})`);
    await page.locator('h1 .badge', { hasText: 'running' }).waitFor({ timeout: 120_000 });
    await page.getByText(new RegExp(`^Step [1-9]\\d* of ${DEMO_STEPS}$`)).waitFor({ timeout: 180_000 });
    await assertAccessible(page, 'demo: training');
    await shot(page, 'demo-01-training');

    // Training ends: the app goes on to Compare by itself, and the comparison's progress shows first.
    await page.waitForURL((u) => u.hash === `#/compare/${encodeURIComponent(runId)}`, { timeout: 360_000 });
    const results = page.getByTestId('demo-results');
    await results.waitFor();
    const tuned = page.getByTestId('demo-tuned-accuracy');
    await tuned.waitFor({ timeout: 180_000 });
    await assertAccessible(page, 'demo: result on Compare');
    await shot(page, 'demo-02-result');

    // The numbers are the stored result's (RunDetails.demo), over every held-out problem `finch demo` scores.
    const d = await api.runDetails(runId);
    assert.equal(d.status, 'completed');
    assert.ok(d.demo, 'the run holds its demo result');
    const pct = (x: number | null) => `${((x ?? NaN) * 100).toFixed(0)}%`;
    assert.equal(await page.getByTestId('demo-base-accuracy').textContent(), pct(d.demo.baseAccuracy));
    assert.equal(await tuned.textContent(), pct(d.demo.tunedAccuracy));
    const heldOut = readFileSync(DEMO_TEST, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { query: string }).query);
    assert.equal(d.demo.rows.length, DEMO_RECIPE.evalRows);
    assert.deepEqual(d.demo.rows.map((r) => r.prompt), heldOut.slice(0, DEMO_RECIPE.evalRows), 'the problems `finch demo` scores, in order');
    assert.equal(d.step, DEMO_STEPS);
    assert.ok(d.demo.tunedAccuracy! > d.demo.baseAccuracy, `the tuned model answers more right (${pct(d.demo.baseAccuracy)} -> ${pct(d.demo.tunedAccuracy)})`);
    console.log(`demo after ${DEMO_STEPS} steps: held-out exact match ${pct(d.demo.baseAccuracy)} -> ${pct(d.demo.tunedAccuracy)}`);

    // Side by side: each shown problem with the base answer and the tuned answer in one row.
    const table = results.getByRole('table', { name: 'Base and fine-tuned answers, side by side' });
    const rows = table.locator('tbody tr');
    assert.equal(await rows.count(), DEMO_RECIPE.showRows);
    const first = d.demo.rows[0]!;
    const cells = await rows.first().locator('td').allTextContents();
    assert.ok(cells[0]!.includes(first.prompt) && cells[1]!.includes(first.base) && cells[2]!.includes(first.tuned ?? ''), JSON.stringify(cells));

    // First thing seen: the result is the page's first section, above the chat, in the first screenful.
    const box = (await results.boundingBox())!;
    const chat = (await page.getByLabel('Message to both models').boundingBox())!;
    assert.ok(box.y < 200 && box.y < chat.y, `the result is at the top (${box.y} px; the chat at ${chat.y} px)`);

    await results.getByText(`All ${DEMO_RECIPE.evalRows} problems`).click();
    assert.equal(await results.getByRole('table', { name: 'Every held-out problem' }).locator('tbody tr').count(), DEMO_RECIPE.evalRows);
    assert.deepEqual(opened.pageErrors, [], 'no errors in the page console');
  } catch (e) {
    throw await failed(e, 'demo', page, [server]);
  } finally {
    api?.close();
    await browser?.close();
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
