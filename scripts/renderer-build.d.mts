// Types of renderer-build.mjs for the TypeScript tests that import it.
export const ROOT: string;
export const RENDERER_INDEX: string;
export function rendererIsStale(): boolean;
export function ensureRendererBuilt(o?: { quiet?: boolean }): boolean;
