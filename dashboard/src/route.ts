/**
 * The dashboard's URLs: one per view, in the hash (`#/fleet?selector=env%3Dprod`,
 * `#/clusters/prod-eu-1`, `#/bundles/web`, `#/rollouts`), so a view can be shared by
 * its address and the back button walks the views; the server serves one page for all.
 */
import { type FleetFilter, noFilter } from './model.ts';

export type Route =
  | { readonly view: 'fleet'; readonly filter: FleetFilter }
  | { readonly view: 'cluster'; readonly id: string }
  | { readonly view: 'bundle'; readonly name: string }
  | { readonly view: 'rollouts' };

export function parseRoute(hash: string): Route {
  const text = hash.replace(/^#/, '');
  const [path = '', query = ''] = text.split('?', 2);
  const parts = path.split('/').filter((p) => p !== '');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  if (parts[0] === 'clusters' && parts[1]) return { view: 'cluster', id: decode(parts[1]) };
  if (parts[0] === 'bundles' && parts[1]) return { view: 'bundle', name: decode(parts[1]) };
  if (parts[0] === 'rollouts') return { view: 'rollouts' };
  const q = new URLSearchParams(query);
  return {
    view: 'fleet',
    filter: {
      selector: q.get('selector') ?? noFilter.selector,
      state: q.get('state') ?? noFilter.state,
      search: q.get('search') ?? noFilter.search,
    },
  };
}

export function formatRoute(route: Route): string {
  switch (route.view) {
    case 'cluster':
      return `#/clusters/${encodeURIComponent(route.id)}`;
    case 'bundle':
      return `#/bundles/${encodeURIComponent(route.name)}`;
    case 'rollouts':
      return '#/rollouts';
    case 'fleet': {
      const q = new URLSearchParams();
      if (route.filter.selector) q.set('selector', route.filter.selector);
      if (route.filter.state) q.set('state', route.filter.state);
      if (route.filter.search) q.set('search', route.filter.search);
      return q.size > 0 ? `#/fleet?${q}` : '#/fleet';
    }
  }
}
