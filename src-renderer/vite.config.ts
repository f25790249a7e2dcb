// Builds the Svelte app into dist/renderer, the folder `finch serve` and Electron's app:// scheme serve.
// Relative asset URLs (base './') so the same build works under both origins.
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    // chart.js is the bulk of the bundle; one chunk keeps the CSP simple (script-src 'self').
    chunkSizeWarningLimit: 800,
  },
});
