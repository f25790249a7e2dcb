// What the tests need from the machine beyond npm packages, how to tell whether it is there, and
// the one command that installs all of it (.ci/run, on Debian 12). `npm test` checks these before
// any test runs (scripts/run-tests.mjs). A test that needs one asks `need(t, ...)`: where it is
// missing, the test fails on CI (CI set to anything but "0" or "false") and skips elsewhere,
// saying what to install. Torch's oracle and WebGPU tests never skip (test/helpers/torch.ts,
// webgpu.ts): without them most of the suite proves nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import type { TestContext } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;

/** CI is set, and not to "0" or "false". */
export const ON_CI = !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());

/** Installs everything below on Debian 12 (as root: the apt phases; the venv goes to the user who ran sudo). */
export const INSTALL_COMMAND = 'sudo .ci/run apt backports venv';

/** Debian's python, with python3-torch (the PyTorch oracle of the gradient and model tests). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** The browser of the e2e and CSP tests. */
export const CHROMIUM = process.env.FINCH_CHROMIUM || '/usr/bin/chromium';

/**
 * The Python with torch 2.13 (CPU), transformers, peft, accelerate and trl pinned in
 * .ci/python-requirements.txt: $FINCH_PYTHON, else the checkout's .venv (`.ci/run venv`).
 */
export const VENV_PYTHON = process.env.FINCH_PYTHON || `${ROOT}.venv/bin/python`;

export type Prerequisite = 'torch' | 'chromium' | 'lavapipe' | 'venv';

/** Each check answers null (present) or what is wrong, in a few words. */
const CHECKS: Record<Prerequisite, () => string | null> = {
  torch() {
    if (!existsSync(DEBIAN_PYTHON)) return `${DEBIAN_PYTHON} is missing (Debian's python3)`;
    const r = spawnSync(DEBIAN_PYTHON, ['-c', 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'], { stdio: 'ignore' });
    if (r.status !== 0) return `${DEBIAN_PYTHON} has no torch (Debian's python3-torch)`;
    // Debian's default reference BLAS makes the oracle ~30x slower: the tests would time out.
    const blas = ['x86_64', 'aarch64'].map((a) => `/usr/lib/${a}-linux-gnu/libblas.so.3`).find((f) => existsSync(f));
    if (blas && !realpathSync(blas).includes('openblas')) return `${blas} is not OpenBLAS (libopenblas0-pthread)`;
    return null;
  },
  chromium: () => (existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (Debian's chromium, or set FINCH_CHROMIUM)`),
  lavapipe() {
    // Dawn rejects Debian 12's own Mesa 22.3; bookworm-backports has Mesa 25.
    const icd = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'].some((d) => existsSync(d) && readdirSync(d).some((f) => f.startsWith('lvp_icd')));
    if (!icd) return 'no lavapipe Vulkan driver (Mesa 25 mesa-vulkan-drivers from bookworm-backports)';
    const dpkg = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
    const major = dpkg.status === 0 ? Number(/^(?:\d+:)?(\d+)\./.exec(dpkg.stdout)?.[1]) : null;
    if (major !== null && major < 25) return `Mesa ${dpkg.stdout.trim()} is too old for Dawn (Mesa 25 from bookworm-backports)`;
    return null;
  },
  venv() {
    if (!existsSync(VENV_PYTHON)) return `no Python venv at ${VENV_PYTHON} (.ci/run venv, or set FINCH_PYTHON)`;
    const r = spawnSync(VENV_PYTHON, [`${ROOT}.ci/venv-check.py`], { encoding: 'utf8' });
    if (r.status !== 0) return `${VENV_PYTHON}: ${(r.stdout + r.stderr).trim().split('\n').join('; ')} (.ci/run venv)`;
    return null;
  },
};

const answers = new Map<Prerequisite, string | null>();

/** Null where `what` is present, else what is missing (checked once per process). */
export function problem(what: Prerequisite): string | null {
  if (!answers.has(what)) answers.set(what, CHECKS[what]());
  return answers.get(what)!;
}

/** Every prerequisite that is missing, with what is wrong. */
export function missingPrerequisites(): { what: Prerequisite; problem: string }[] {
  return (Object.keys(CHECKS) as Prerequisite[]).flatMap((what) => {
    const p = problem(what);
    return p ? [{ what, problem: p }] : [];
  });
}

/**
 * At the start of a test that needs `what`: true where it is present. Where it is missing, the
 * test fails on CI and is skipped elsewhere (the caller returns on false).
 */
export function need(t: TestContext, what: Prerequisite): boolean {
  const p = problem(what);
  if (!p) return true;
  if (ON_CI) throw new Error(`${p}: CI must have it (${INSTALL_COMMAND})`);
  t.skip(`${p}; install with ${INSTALL_COMMAND}`);
  return false;
}
