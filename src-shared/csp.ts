// The Content-Security-Policy of every Finch page, produced in one place: Electron sends it as a
// response header on each page it serves (src-main/electron/app-scheme.ts, security.ts for the dev
// server), browser mode's server on each file (src-main/server/index.ts, with its API WebSocket),
// and the renderer's index.html carries it as a <meta> tag, so a page opened any other way is
// still covered.
//
// What it allows: scripts, styles, images, fonts and fetches from the page's own origin only
// (app://finch in Electron, http://127.0.0.1:<port> in browser mode); images also as data: URLs
// (chart.js exports, inline SVG icons). Inline styles are allowed because Svelte and chart.js set
// style attributes; inline *scripts*, eval, plugins, <base>, form posts, framing and every remote
// origin are refused.

export interface CspOptions {
  /** Extra connect-src sources (browser mode's API WebSocket; the Vite dev server's HMR socket in development). */
  connect?: readonly string[];
  /**
   * For a <meta> tag: leaves out frame-ancestors, which browsers ignore (with a console warning)
   * when it is not sent as a header.
   */
  meta?: boolean;
}

export function contentSecurityPolicy(o: CspOptions = {}): string {
  const directives: [string, ...string[]][] = [
    ['default-src', "'self'"],
    ['script-src', "'self'"],
    ['style-src', "'self'", "'unsafe-inline'"],
    ['img-src', "'self'", 'data:'],
    ['font-src', "'self'"],
    ['connect-src', "'self'", ...(o.connect ?? [])],
    ['worker-src', "'self'"],
    ['object-src', "'none'"],
    ['base-uri', "'none'"],
    ['form-action', "'none'"],
  ];
  if (!o.meta) directives.push(['frame-ancestors', "'none'"]);
  return directives.map((d) => d.join(' ')).join('; ');
}
