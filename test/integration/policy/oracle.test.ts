/**
 * Differential test of the policy engine against the reference: the bed's kube-apiserver,
 * which enforces ValidatingAdmissionPolicy. Each case's policy and binding are created on
 * the server, the object is tried with a server-side dry-run create, and the server's
 * answer (denied or not, its message, its Warning header) must equal what
 * evaluatePolicies says for the same documents.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeObject } from '@flotilla/shared';
import { evaluatePolicies, kindToResource, loadPolicies } from '@flotilla/shared/policy';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { controlPlane, uniqueName } from '../agent/harness.ts';
import { ORACLE_CASES } from './oracle-cases.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
const run = uniqueName('vap');
const NS = `${run}-prod`;
const NS_DEV = `${run}-dev`;
const kc = new KubeConfig();
kc.loadFromFile(plane.kubeconfigPath);

interface Answer {
  readonly status: number;
  readonly body: { message?: string; reason?: string; metadata?: { generation?: number } } & Record<
    string,
    unknown
  >;
  readonly warnings: string[];
}

async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no server');
  const url = new URL(path, server);
  const opts: RequestOptions = {
    method,
    hostname: url.hostname,
    port: url.port,
    path: `${url.pathname}${url.search}`,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
  };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(opts, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        data += c;
      });
      res.on('end', () => {
        const raw = res.headers.warning;
        const warnings = (Array.isArray(raw) ? raw : raw ? [raw] : []).map((w) =>
          // `299 - "text"`: the text, unquoted.
          w.replace(/^\d{3} [^ ]+ "(.*)"$/s, '$1').replace(/\\"/g, '"'),
        );
        resolve({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) : {}, warnings });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

function collectionPath(o: KubeObject): string {
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const resource = kindToResource(o.kind);
  if (o.kind === 'ValidatingAdmissionPolicy' || o.kind === 'ValidatingAdmissionPolicyBinding')
    return `${base}/${resource}`;
  return `${base}/namespaces/${o.metadata.namespace ?? 'default'}/${resource}`;
}

async function create(o: KubeObject): Promise<void> {
  const a = await call('POST', collectionPath(o), o);
  if (a.status >= 300)
    throw new Error(`creating ${o.kind} ${o.metadata.name}: ${a.status} ${a.body.message}`);
}

async function remove(o: KubeObject): Promise<void> {
  await call('DELETE', `${collectionPath(o)}/${o.metadata.name}`);
}

/**
 * The part of a message both sides word alike: for an expression that errors, the CEL
 * engines' own error texts differ (`no such key` and `field not found`), the rest does not.
 */
function comparable(message: string | undefined): string | undefined {
  const at = message?.indexOf(' resulted in error: ') ?? -1;
  return message === undefined || at < 0 ? message : message.slice(0, at + ' resulted in error: '.length);
}

/** The verdict as both sides can give it. */
interface Verdict {
  readonly outcome: 'allow' | 'deny' | 'warn';
  readonly message: string | undefined;
}

function serverVerdict(a: Answer, policy: string): Verdict {
  if (a.status >= 300) {
    const m = /denied request: (.*)$/s.exec(a.body.message ?? '');
    return { outcome: 'deny', message: m ? m[1] : a.body.message };
  }
  const prefix = `Validation failed for ValidatingAdmissionPolicy '${policy}' with binding '${policy}': `;
  const w = a.warnings.find((x) => x.startsWith(prefix));
  return w ? { outcome: 'warn', message: w.slice(prefix.length) } : { outcome: 'allow', message: undefined };
}

const namespaces: KubeObject[] = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS, labels: { env: 'prod', 'kubernetes.io/metadata.name': NS } },
  },
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS_DEV, labels: { env: 'dev', 'kubernetes.io/metadata.name': NS_DEV } },
  },
];

beforeAll(async () => {
  for (const ns of namespaces) {
    const a = await call('POST', '/api/v1/namespaces', ns);
    if (a.status >= 300) throw new Error(`namespace ${ns.metadata.name}: ${a.body.message}`);
  }
});

afterAll(async () => {
  for (const ns of namespaces) await call('DELETE', `/api/v1/namespaces/${ns.metadata.name}`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the policy engine decides as the kube-apiserver does', () => {
  it('has a corpus of at least 30 cases', () => {
    expect(ORACLE_CASES.length).toBeGreaterThanOrEqual(30);
  });

  for (const [index, c] of ORACLE_CASES.entries()) {
    it(`${c.name}`, { timeout: 60_000 }, async () => {
      const name = `${run}-${index}`;
      const text = c.policies.replaceAll('NS_DEV', NS_DEV).replaceAll('NAME', name).replaceAll('NS', NS);
      const object = JSON.parse(
        JSON.stringify(c.object)
          .replaceAll('NS_DEV', NS_DEV)
          .replaceAll('NAME', name)
          .replaceAll('"NS"', `"${NS}"`),
      ) as KubeObject;
      const { set, errors } = loadPolicies([{ path: `policies/${c.name}.yaml`, content: text }]);
      const docs = parseAllDocuments(text).map((d) => d.toJS() as KubeObject);
      if (c.expect === 'refused') {
        const policyDoc = docs.find((d) => d.kind === 'ValidatingAdmissionPolicy') as KubeObject;
        const answer = await call('POST', collectionPath(policyDoc), policyDoc);
        if (answer.status < 300) await remove(policyDoc);
        expect({ case: c.name, status: answer.status, flotillaErrors: errors.length > 0 }).toEqual({
          case: c.name,
          status: 422,
          flotillaErrors: true,
        });
        return;
      }
      expect(errors).toEqual([]);
      const violations = evaluatePolicies(set, [object, ...namespaces]);
      const deny = violations.find((v) => v.action === 'Deny');
      const warn = violations.find((v) => v.action === 'Warn');
      const ours: Verdict = deny
        ? { outcome: 'deny', message: deny.message }
        : warn
          ? { outcome: 'warn', message: warn.message }
          : { outcome: 'allow', message: undefined };

      // Params and the policy first, the binding last: the binding is what turns the policy on.
      const order = [...docs].sort(
        (a, b) =>
          Number(a.kind === 'ValidatingAdmissionPolicyBinding') -
          Number(b.kind === 'ValidatingAdmissionPolicyBinding'),
      );
      try {
        for (const d of order) await create(d);
        const policyPath = `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${name}`;
        // The type-checking controller has seen the policy once it reports on its generation.
        for (let i = 0; i < 100; i++) {
          const p = await call('GET', policyPath);
          const status = p.body.status as { observedGeneration?: number } | undefined;
          if (status?.observedGeneration === p.body.metadata?.generation) break;
          await sleep(100);
        }
        // The binding reaches the admission plugin through an informer: wait until the server's
        // answer is the one Flotilla gives and stays so, or give up and compare what it says last
        // (params found by selector reach it through their own informer: up to about 15 s under load).
        const dryRun = `${collectionPath(object)}?dryRun=All`;
        let theirs = serverVerdict(await call('POST', dryRun, object), name);
        const deadline = Date.now() + 30_000;
        let stable = 0;
        while (Date.now() < deadline && stable < 3) {
          await sleep(400);
          const next = serverVerdict(await call('POST', dryRun, object), name);
          stable = next.outcome === theirs.outcome && next.outcome === ours.outcome ? stable + 1 : 0;
          theirs = next;
        }
        expect({ case: c.name, outcome: theirs.outcome, message: comparable(theirs.message) }).toEqual({
          case: c.name,
          outcome: ours.outcome,
          message: comparable(ours.message),
        });
        expect(ours.outcome).toBe(c.expect);
      } finally {
        for (const d of order.reverse()) await remove(d);
      }
    });
  }
});
