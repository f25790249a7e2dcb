// Which screen is showing, kept in the URL hash (#/run/abc) so reload and Back work and the
// page's query string (browser mode's token) is never touched.

export type Route =
  | { name: 'home' }
  | { name: 'wizard' }
  | { name: 'run'; id: string }
  | { name: 'compare'; id: string | null }
  | { name: 'export'; id: string | null }
  | { name: 'settings' };

export function parseRoute(hash: string): Route {
  const [name = '', id] = hash.replace(/^#\/?/, '').split('?')[0]!.split('/').map(decodeURIComponent);
  switch (name) {
    case 'new': return { name: 'wizard' };
    case 'run': return id ? { name: 'run', id } : { name: 'home' };
    case 'compare': return { name: 'compare', id: id || null };
    case 'export': return { name: 'export', id: id || null };
    case 'settings': return { name: 'settings' };
    default: return { name: 'home' };
  }
}

export function routeHash(r: Route): string {
  switch (r.name) {
    case 'home': return '#/';
    case 'wizard': return '#/new';
    case 'run': return `#/run/${encodeURIComponent(r.id)}`;
    case 'compare': return r.id ? `#/compare/${encodeURIComponent(r.id)}` : '#/compare';
    case 'export': return r.id ? `#/export/${encodeURIComponent(r.id)}` : '#/export';
    case 'settings': return '#/settings';
  }
}

class Router {
  route = $state<Route>(parseRoute(typeof location === 'undefined' ? '' : location.hash));

  constructor() {
    if (typeof window !== 'undefined') window.addEventListener('hashchange', () => { this.route = parseRoute(location.hash); });
  }

  go(r: Route): void {
    const hash = routeHash(r);
    if (location.hash !== hash) location.hash = hash;
    this.route = r;
  }
}

export const router = new Router();
