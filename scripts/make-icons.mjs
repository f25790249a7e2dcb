#!/usr/bin/env node
// Renders the app icon (assets/icon/finch.svg) into the files installers and windows need, and
// writes them beside it (they are committed, so `npm run dist` needs no image tools):
//   png/<N>x<N>.png   16 ... 1024 px (Linux packages take the folder; the window icon is 512)
//   finch.ico         Windows (NSIS, the .exe): PNG-compressed entries 16 ... 256
//   finch.icns        macOS (DMG, the .app): PNG entries 16 ... 1024
// Rendering uses Debian's Chromium through playwright-core (already used by the tests), so the
// pixels come from a real SVG renderer. ICO and ICNS are plain containers of PNG files; their
// layouts are documented by Microsoft (ICONDIR / ICONDIRENTRY) and Apple (IconFamilyElement).
// Usage: node scripts/make-icons.mjs   (CHROMIUM=/path/to/chromium to use another browser)
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const dir = fileURLToPath(new URL('../assets/icon/', import.meta.url));
const SIZES = [16, 24, 32, 48, 64, 128, 256, 512, 1024];
const ICO_SIZES = [16, 24, 32, 48, 64, 128, 256];
/** ICNS element types holding PNG data, by pixel size (the @2x types reuse the larger renders). */
const ICNS_TYPES = [['icp4', 16], ['icp5', 32], ['icp6', 64], ['ic07', 128], ['ic08', 256], ['ic09', 512], ['ic10', 1024], ['ic11', 32], ['ic12', 64], ['ic13', 256], ['ic14', 512]];

function writeAtomic(path, bytes) {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

async function render() {
  const svg = readFileSync(join(dir, 'finch.svg'), 'utf8');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ deviceScaleFactor: 1 });
    const pngs = new Map();
    for (const n of SIZES) {
      await page.setViewportSize({ width: n, height: n });
      const src = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
      await page.setContent(`<style>html,body{margin:0;background:transparent}</style><img src="${src}" width="${n}" height="${n}">`);
      await page.waitForFunction(() => document.images[0]?.complete);
      pngs.set(n, await page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: n, height: n } }));
    }
    return pngs;
  } finally {
    await browser.close();
  }
}

function ico(pngs) {
  const header = Buffer.alloc(6 + 16 * ICO_SIZES.length);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // 1 = icon
  header.writeUInt16LE(ICO_SIZES.length, 4);
  let offset = header.length;
  ICO_SIZES.forEach((n, i) => {
    const e = 6 + 16 * i;
    const png = pngs.get(n);
    header.writeUInt8(n >= 256 ? 0 : n, e); // 0 means 256
    header.writeUInt8(n >= 256 ? 0 : n, e + 1);
    header.writeUInt16LE(1, e + 4); // colour planes
    header.writeUInt16LE(32, e + 6); // bits per pixel
    header.writeUInt32LE(png.length, e + 8);
    header.writeUInt32LE(offset, e + 12);
    offset += png.length;
  });
  return Buffer.concat([header, ...ICO_SIZES.map((n) => pngs.get(n))]);
}

function icns(pngs) {
  const elements = ICNS_TYPES.map(([type, n]) => {
    const png = pngs.get(n);
    const head = Buffer.alloc(8);
    head.write(type, 0, 'latin1');
    head.writeUInt32BE(png.length + 8, 4);
    return Buffer.concat([head, png]);
  });
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'latin1');
  head.writeUInt32BE(8 + elements.reduce((s, e) => s + e.length, 0), 4);
  return Buffer.concat([head, ...elements]);
}

const pngs = await render();
mkdirSync(join(dir, 'png'), { recursive: true });
for (const [n, png] of pngs) writeAtomic(join(dir, 'png', `${n}x${n}.png`), png);
writeAtomic(join(dir, 'finch.ico'), ico(pngs));
writeAtomic(join(dir, 'finch.icns'), icns(pngs));
console.log(`wrote ${pngs.size} PNGs, finch.ico and finch.icns to ${dir}`);
