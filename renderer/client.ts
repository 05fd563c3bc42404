/**
 * Client of the renderer worker (`flotilla-renderer`): one long-lived process,
 * started on first use, that renders Helm charts and kustomizations with the real
 * libraries. Requests are queued here and at most `maxInFlight` are written to the
 * worker at a time, so when the worker dies only those fail; the queue carries on
 * with a fresh process. The protocol is in docs/renderer.md.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** File contents by path relative to the chart or kustomization tree, base64-encoded. */
export type EncodedFiles = Readonly<Record<string, string>>;

/**
 * `helm template`: the chart either as its files at the root of `files` (Chart.yaml,
 * templates/, charts/ …) or as a packaged chart (`archive`, the .tgz base64-encoded,
 * loaded as `helm template NAME chart.tgz` loads it).
 */
export type HelmRenderRequest = HelmRenderOptions &
  (
    | { readonly files: EncodedFiles; readonly archive?: undefined }
    | { readonly archive: string; readonly files?: undefined }
  );

export interface HelmRenderOptions {
  readonly kind: 'helm';
  readonly releaseName: string;
  readonly namespace: string;
  readonly values?: Readonly<Record<string, unknown>>;
  /** `.Capabilities.KubeVersion`, e.g. `v1.31.0`; Helm's default when absent. */
  readonly kubeVersion?: string;
  /** Extra `.Capabilities.APIVersions`, as `helm template --api-versions`. */
  readonly apiVersions?: readonly string[];
  /** Leave out `crds/` (included by default, as `helm template --include-crds`). */
  readonly skipCRDs?: boolean;
  readonly isUpgrade?: boolean;
}

/** `kustomize build dir`, where `dir` is a path inside `files`. */
export interface KustomizeRenderRequest {
  readonly kind: 'kustomize';
  readonly files: EncodedFiles;
  readonly dir: string;
}

/** One file of strategic-merge patches: its repo path (for errors) and its multi-document YAML. */
export interface PatchFile {
  readonly file: string;
  readonly content: string;
}

/**
 * Strategic-merge patches applied by kustomize to `resources` (multi-document YAML), file
 * after file, document after document. Each patch names its target by API group, kind,
 * name and, optionally, namespace; objects without one are in `namespace`.
 */
export interface PatchRenderRequest {
  readonly kind: 'patch';
  readonly resources: string;
  readonly patches: readonly PatchFile[];
  readonly namespace?: string;
}

export type RenderRequest = HelmRenderRequest | KustomizeRenderRequest | PatchRenderRequest;

/**
 * Picks a chart version as Helm does. With `index` (a Helm repository's index.yaml)
 * and `chart`: `helm pull --repo URL CHART --version VERSION`. With `tags` (an OCI
 * repository's tags): `helm pull oci://… --version VERSION`. An absent or empty
 * `version` means the newest stable version.
 */
export type ResolveRequest =
  | { readonly index: string; readonly chart: string; readonly version?: string }
  | { readonly tags: readonly string[]; readonly version?: string };

/** The chart version picked by a resolve request. */
export interface ResolvedChart {
  readonly version: string;
  /** From an index: the chart's name and its download URLs (maybe relative to the repository). */
  readonly name?: string;
  readonly urls?: readonly string[];
  /** From an index: the archive's `sha256` digest as the index records it (hex, no prefix). */
  readonly digest?: string;
  /** From tags: the tag to pull, `version` with `+` written as `_`. */
  readonly tag?: string;
}

export type ResolveResult =
  | { readonly ok: true; readonly chart: ResolvedChart }
  | { readonly ok: false; readonly error: RenderErrorDetail };

/** Where a render failed, as far as Helm or kustomize say. */
export interface RenderErrorDetail {
  readonly message: string;
  /** Template or kustomization file, e.g. `web/templates/deployment.yaml`. */
  readonly file?: string;
  readonly line?: number;
}

/**
 * A render either yields multi-document YAML, as the CLI prints it, or says why not. A
 * `patch` render also gives, for each object of `manifests`, its index in the request's
 * `resources` (objects deleted by a patch are missing).
 */
export type RenderResult =
  | { readonly ok: true; readonly manifests: string; readonly sources?: readonly number[] }
  | { readonly ok: false; readonly error: RenderErrorDetail };

/** Library versions linked into the worker, by name (`helm`, `kustomize/api`, `go` …). */
export type RendererVersions = Readonly<Record<string, string>>;

/** The worker failed, not the render: it died, could not start, or broke the protocol. */
export class RendererWorkerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RendererWorkerError';
  }
}

export interface RendererClientOptions {
  /** Path of `flotilla-renderer` (see `ensureRenderer` in ./build.ts). */
  readonly binary: string;
  /** Requests written to the worker before their answers are read; the rest wait here. */
  readonly maxInFlight?: number;
  /** Receives the worker's stderr lines (Helm warnings, panics); dropped by default. */
  readonly onStderr?: (line: string) => void;
}

interface Pending {
  readonly id: string;
  readonly line: string;
  resolve(answer: WireAnswer): void;
  reject(err: Error): void;
}

interface WireAnswer {
  readonly id: string;
  readonly ok: boolean;
  readonly manifests?: string;
  readonly sources?: number[];
  readonly versions?: Record<string, string>;
  readonly chart?: ResolvedChart;
  readonly error?: RenderErrorDetail;
}

interface Worker {
  readonly child: ChildProcessWithoutNullStreams;
  readonly inFlight: Map<string, Pending>;
  stderrTail: string[];
  exited: Promise<void>;
}

/** Kept for error messages when the worker dies. */
const stderrTailLines = 20;

/**
 * @example
 * const client = new RendererClient({ binary: await ensureRenderer() });
 * const result = await client.render({ kind: 'kustomize', files, dir: 'overlays/prod' });
 * await client.close();
 */
export class RendererClient {
  readonly #binary: string;
  readonly #maxInFlight: number;
  readonly #onStderr: ((line: string) => void) | undefined;
  readonly #queue: Pending[] = [];
  #worker: Worker | undefined;
  #nextId = 1;
  #closed = false;
  #starts = 0;

  constructor(opts: RendererClientOptions) {
    this.#binary = opts.binary;
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? 2);
    this.#onStderr = opts.onStderr;
  }

  /** Process id of the current worker, if one is running. */
  get pid(): number | undefined {
    return this.#worker?.child.pid;
  }

  /** How many worker processes this client has started (1 unless one died). */
  get starts(): number {
    return this.#starts;
  }

  async render(request: RenderRequest): Promise<RenderResult> {
    const answer = await this.#send({ ...request });
    if (answer.ok) {
      if (typeof answer.manifests !== 'string')
        throw new RendererWorkerError(`answer ${answer.id} has ok but no manifests`);
      return answer.sources === undefined
        ? { ok: true, manifests: answer.manifests }
        : { ok: true, manifests: answer.manifests, sources: answer.sources };
    }
    return { ok: false, error: answer.error ?? { message: 'the renderer gave no error detail' } };
  }

  /** Picks a chart version from a repository index or an OCI repository's tags. */
  async resolve(request: ResolveRequest): Promise<ResolveResult> {
    const answer = await this.#send({ ...request, kind: 'resolve' });
    if (answer.ok) {
      if (!answer.chart) throw new RendererWorkerError(`answer ${answer.id} has ok but no chart`);
      return { ok: true, chart: answer.chart };
    }
    return { ok: false, error: answer.error ?? { message: 'the renderer gave no error detail' } };
  }

  async versions(): Promise<RendererVersions> {
    const answer = await this.#send({ kind: 'version' });
    if (!answer.ok || !answer.versions)
      throw new RendererWorkerError(`version request failed: ${answer.error?.message ?? 'no versions'}`);
    return answer.versions;
  }

  /** Fails queued requests, lets the worker finish the ones it has, and waits for it to exit. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new RendererWorkerError('renderer client closed'));
    const worker = this.#worker;
    if (!worker) return;
    worker.child.stdin.end();
    const timer = setTimeout(() => worker.child.kill('SIGKILL'), 10_000);
    await worker.exited;
    clearTimeout(timer);
  }

  #send(body: Record<string, unknown>): Promise<WireAnswer> {
    if (this.#closed) return Promise.reject(new RendererWorkerError('renderer client closed'));
    const id = String(this.#nextId++);
    return new Promise<WireAnswer>((resolve, reject) => {
      this.#queue.push({ id, line: `${JSON.stringify({ ...body, id })}\n`, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const worker = this.#worker ?? this.#start();
      if (!worker) return;
      if (worker.inFlight.size >= this.#maxInFlight) return;
      const next = this.#queue.shift() as Pending;
      worker.inFlight.set(next.id, next);
      worker.child.stdin.write(next.line);
    }
  }

  #start(): Worker | undefined {
    const child = spawn(this.#binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#starts++;
    const worker: Worker = { child, inFlight: new Map(), stderrTail: [], exited: Promise.resolve() };
    this.#worker = worker;
    // A write after the worker died raises EPIPE here; the exit handler reports it.
    child.stdin.on('error', () => {});
    createInterface({ input: child.stderr }).on('line', (line) => {
      worker.stderrTail.push(line);
      if (worker.stderrTail.length > stderrTailLines) worker.stderrTail.shift();
      this.#onStderr?.(line);
    });
    createInterface({ input: child.stdout }).on('line', (line) => this.#onAnswer(worker, line));
    worker.exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (how: string) => {
        if (done) return;
        done = true;
        this.#onExit(worker, how);
        resolve();
      };
      child.once('error', (err) => finish(`could not run ${this.#binary}: ${err.message}`));
      child.once('close', (code, signal) =>
        finish(signal ? `killed by ${signal}` : `exited with code ${code}`),
      );
    });
    return worker;
  }

  #onAnswer(worker: Worker, line: string): void {
    // An abandoned worker's late output answers nothing anyone waits for.
    if (worker !== this.#worker) return;
    let answer: WireAnswer;
    try {
      answer = JSON.parse(line) as WireAnswer;
    } catch (err) {
      this.#abandon(worker, `unparsable answer from the renderer: ${line.slice(0, 200)}`, err);
      return;
    }
    const pending = worker.inFlight.get(answer.id);
    if (!pending) {
      this.#abandon(worker, `answer for unknown request id ${JSON.stringify(answer.id)}`);
      return;
    }
    worker.inFlight.delete(answer.id);
    pending.resolve(answer);
    this.#pump();
  }

  /** The worker broke the protocol: its other answers cannot be trusted, so start afresh. */
  #abandon(worker: Worker, why: string, cause?: unknown): void {
    // Detached first, so requests from here on go to a new worker, not the dying one.
    this.#worker = undefined;
    this.#failInFlight(worker, `renderer protocol error: ${why}`, cause);
    worker.child.kill('SIGKILL');
    this.#pump();
  }

  #onExit(worker: Worker, how: string): void {
    if (this.#worker === worker) this.#worker = undefined;
    const tail =
      worker.stderrTail.length > 0 ? `; its last stderr lines:\n${worker.stderrTail.join('\n')}` : '';
    this.#failInFlight(worker, `renderer worker (pid ${worker.child.pid ?? '?'}) ${how}${tail}`);
    // Requests still queued never reached the dead worker: they go to a new one.
    if (!this.#closed) this.#pump();
  }

  #failInFlight(worker: Worker, message: string, cause?: unknown): void {
    const failed = [...worker.inFlight.values()];
    worker.inFlight.clear();
    for (const p of failed) {
      p.reject(
        new RendererWorkerError(`request ${p.id} not rendered: ${message}`, cause ? { cause } : undefined),
      );
    }
  }
}

/** Encodes file contents for a request. */
export function encodeFiles(files: Readonly<Record<string, string | Uint8Array>>): EncodedFiles {
  return Object.fromEntries(
    Object.entries(files).map(([path, data]) => [path, Buffer.from(data).toString('base64')]),
  );
}
