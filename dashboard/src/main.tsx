/**
 * The fleet dashboard, served by `flotilla dashboard`.
 *
 * Preact with JSX compiled by esbuild: Preact is a small, long-maintained React-compatible
 * library (about 4 kB) whose hooks cover this UI; JSX rather than htm because the root
 * tsconfig type-checks it (props, the hub's wire types) and esbuild compiles it with no
 * template parser in the page.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { createApi, type Heard } from './api.ts';
import { type Problem, problemOf } from './live.ts';
import { ago } from './model.ts';
import { formatRoute, parseRoute, type Route } from './route.ts';
import './style.css';
import { BundleView } from './views/bundle.tsx';
import { ClusterView } from './views/cluster.tsx';
import { FleetView } from './views/fleet.tsx';
import { RolloutsView } from './views/rollouts.tsx';

/** Set by `flotilla dashboard` when it runs with a tenant's key: the page then reads that tenant's routes. */
const tenant = document.querySelector<HTMLMetaElement>('meta[name="flotilla-tenant"]')?.content || null;
const api = createApi(undefined, tenant);

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

/** When the hub last answered, and why the last call did not reach it. */
interface LiveState {
  readonly lastHeardAt: number | null;
  readonly problem: Problem | null;
}

function useHeard(): LiveState {
  const [live, setLive] = useState<LiveState>({ lastHeardAt: null, problem: null });
  useEffect(
    () =>
      api.onHeard((heard: Heard) =>
        setLive((before) =>
          heard.error === null
            ? { lastHeardAt: heard.at, problem: null }
            : { lastHeardAt: before.lastHeardAt, problem: problemOf(heard.error) },
        ),
      ),
    [],
  );
  return live;
}

function Banner(props: { live: LiveState; now: number }) {
  const { problem, lastHeardAt } = props.live;
  if (!problem) return null;
  const since =
    lastHeardAt === null ? 'not heard from it yet' : `last heard from it ${ago(lastHeardAt, props.now)} ago`;
  const text =
    problem.kind === 'unauthorized'
      ? `The hub refused the dashboard's credentials: ${problem.message}. Check the admin key (FLOTILLA_ADMIN_KEY) or IAM identity that flotilla dashboard runs with.`
      : problem.kind === 'unreachable'
        ? `The hub cannot be reached: ${problem.message}.`
        : `The hub answered with an error: ${problem.message}.`;
  return (
    <div class={`banner banner-${problem.kind}`} role="alert">
      {text} The dashboard keeps trying ({since}).
    </div>
  );
}

function Nav(props: { route: Route }) {
  const item = (view: Route['view'], href: string, label: string) => (
    <a href={href} aria-current={props.route.view === view ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <nav aria-label="views">
      {item('fleet', '#/fleet', 'Fleet')}
      {item('rollouts', '#/rollouts', 'Rollouts')}
    </nav>
  );
}

function App() {
  const route = useRoute();
  const now = useNow(1000);
  const live = useHeard();
  return (
    <>
      <header>
        <h1>
          <a href="#/fleet">Flotilla</a>
        </h1>
        <Nav route={route} />
        {tenant && <p class="tenant">tenant {tenant}</p>}
        <p class="heard" aria-live="off">
          {live.lastHeardAt === null
            ? 'waiting for the hub…'
            : `last heard from the hub ${ago(live.lastHeardAt, now)} ago`}
        </p>
      </header>
      <Banner live={live} now={now} />
      <main>
        {route.view === 'fleet' ? (
          <FleetView
            api={api}
            filter={route.filter}
            onFilter={(filter) => {
              // Typing in a filter replaces the address rather than stacking history entries.
              history.replaceState(null, '', formatRoute({ view: 'fleet', filter }));
              window.dispatchEvent(new HashChangeEvent('hashchange'));
            }}
          />
        ) : route.view === 'cluster' ? (
          <ClusterView api={api} id={route.id} now={now} />
        ) : route.view === 'bundle' ? (
          <BundleView api={api} name={route.name} />
        ) : (
          <RolloutsView api={api} now={now} />
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
