/**
 * agent/Dockerfile's steps, done in a directory of this machine instead of a container
 * (there is no Docker here): its COPY lines copy from the repository, its RUN lines run
 * with `sh -c` in the image's working directory, its ENV and ARG lines set what they set,
 * and its ENTRYPOINT is the command the pod runs. So a change to the Dockerfile is what the
 * image test exercises, not a copy of it.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

export interface DockerInstruction {
  readonly op: string;
  readonly args: string;
  /** 1-based line where it starts, for messages. */
  readonly line: number;
}

export interface DockerStage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly DockerInstruction[];
}

/** Instructions by stage (continuation lines joined, comments dropped); ARGs before the first FROM are global. */
export function parseDockerfile(text: string): { globalArgs: DockerInstruction[]; stages: DockerStage[] } {
  const instructions: DockerInstruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? '';
      if (/^\s*#/.test(next)) continue;
      // As Docker does: the backslash and the newline go, the next line's indentation stays.
      line = `${line.replace(/\\\s*$/, '')}${next}`;
    }
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(line);
    if (!m) throw new Error(`agent/Dockerfile:${start + 1}: cannot read "${line}"`);
    instructions.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start + 1 });
  }
  const globalArgs: DockerInstruction[] = [];
  const stages: { from: string; name: string | undefined; instructions: DockerInstruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const [from, as, name] = ins.args.split(/\s+/);
      stages.push({
        from: from ?? '',
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (ins.op === 'ARG') globalArgs.push(ins);
    } else stages.at(-1)?.instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** `KEY=value KEY2="value 2"` (ENV, ARG with default), or the legacy `KEY value`. */
function keyValues(args: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of args.matchAll(re)) {
    const raw = m[2] as string;
    out.push([m[1] as string, raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw]);
  }
  if (out.length === 0) {
    const legacy = /^(\S+)\s+([\s\S]+)$/.exec(args);
    if (legacy) out.push([legacy[1] as string, legacy[2] as string]);
  }
  return out;
}

/**
 * The build machine's network settings (proxy, extra CAs, npm registry), which a `docker
 * build` passes to its RUN steps as build arguments or through the daemon's configuration.
 */
function buildMachineNetwork(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined &&
        /^(https?_proxy|no_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|npm_config_(registry|cafile|proxy|https_proxy|strict_ssl))$/i.test(
          e[0],
        ),
    ),
  );
}

/** What the built image runs. */
export interface ReproducedImage {
  /** The image's working directory, here. */
  readonly workdir: string;
  /** ENTRYPOINT, exec form, with the image's paths mapped to this machine. */
  readonly entrypoint: readonly string[];
  /** The final stage's ENV. */
  readonly env: Readonly<Record<string, string>>;
  /** The RUN commands that ran, as run. */
  readonly ran: readonly string[];
}

/**
 * Builds the image's file system for the last stage into `root` (the image's `/` is
 * `root`): every stage's COPY from the build context, RUN, ENV and ARG, in order; a `COPY
 * --from=<stage>` of the same path is the same directory here. `npm cache clean --force`
 * is left out: here it would empty the developer's npm cache, not a layer's.
 */
export function reproduceImage(opts: {
  readonly dockerfile: string;
  readonly context: string;
  readonly root: string;
  /** PATH for RUN: it must find node and npm of the image's Node version. */
  readonly path: string;
  readonly log?: (line: string) => void;
  /** How long one RUN may take. */
  readonly runTimeoutMs?: number;
}): ReproducedImage {
  const { globalArgs, stages } = parseDockerfile(opts.dockerfile);
  const args = new Map<string, string>();
  for (const ins of globalArgs) for (const [k, v] of keyValues(ins.args)) args.set(k, v);
  const inRoot = (p: string) => join(opts.root, p);
  /** An absolute path of the image, as a path here, inside shell text. */
  const mapPaths = (text: string, workdir: string) =>
    text.replace(
      new RegExp(`(^|[\\s='"(])${workdir.replace(/[/.]/g, '\\$&')}(?=[/\\s'")]|$)`, 'gm'),
      `$1${inRoot(workdir)}`,
    );
  const ran: string[] = [];
  let last: ReproducedImage | undefined;
  for (const stage of stages) {
    let workdir = '/';
    const env: Record<string, string> = {};
    const stageArgs = new Map(args);
    let entrypoint: string[] = [];
    const substitute = (text: string) =>
      text.replace(
        /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g,
        (all, name: string) => stageArgs.get(name) ?? env[name] ?? all,
      );
    for (const ins of stage.instructions) {
      switch (ins.op) {
        case 'WORKDIR':
          workdir = isAbsolute(ins.args) ? ins.args : join(workdir, ins.args);
          mkdirSync(inRoot(workdir), { recursive: true });
          break;
        case 'ARG':
          for (const [k, v] of keyValues(ins.args)) stageArgs.set(k, v);
          break;
        case 'ENV':
          for (const [k, v] of keyValues(substitute(ins.args))) env[k] = mapPaths(v, workdir);
          break;
        case 'COPY': {
          const words = ins.args.split(/\s+/);
          const flags = words.filter((w) => w.startsWith('--'));
          const paths = words.filter((w) => !w.startsWith('--'));
          const dest = paths.pop() as string;
          const target = inRoot(isAbsolute(dest) ? dest : join(workdir, dest));
          if (flags.some((f) => f.startsWith('--from='))) {
            // One file system here: the earlier stage's files are where this copy puts them.
            if (paths.every((p) => inRoot(p) === target)) break;
            throw new Error(`agent/Dockerfile:${ins.line}: COPY --from to another path is not reproduced`);
          }
          for (const src of paths) {
            const from = join(opts.context, src);
            const to = dest.endsWith('/') ? join(target, src.split('/').pop() as string) : target;
            mkdirSync(dirname(to), { recursive: true });
            cpSync(from, to, { recursive: true });
          }
          break;
        }
        case 'RUN': {
          const command = mapPaths(substitute(ins.args), workdir).replace(/npm cache clean --force/g, 'true');
          opts.log?.(`RUN ${command}`);
          ran.push(command);
          try {
            execFileSync('sh', ['-c', command], {
              cwd: inRoot(workdir),
              env: { ...buildMachineNetwork(), PATH: opts.path, HOME: process.env.HOME ?? '/tmp', ...env },
              stdio: ['ignore', 'pipe', 'pipe'],
              maxBuffer: 64 * 1024 * 1024,
              timeout: opts.runTimeoutMs ?? 240_000,
            });
          } catch (e) {
            const err = e as { stderr?: Buffer; message: string };
            throw new Error(
              `agent/Dockerfile:${ins.line}: RUN failed: ${err.message}\n${err.stderr?.toString().slice(-4000) ?? ''}`,
              { cause: e },
            );
          }
          break;
        }
        case 'ENTRYPOINT':
          entrypoint = (JSON.parse(ins.args) as string[]).map((a) => mapPaths(a, workdir));
          break;
        default:
          // LABEL, EXPOSE, USER: nothing to do for a process on this machine.
          break;
      }
    }
    last = { workdir: inRoot(workdir), entrypoint, env, ran };
  }
  if (!last || last.entrypoint.length === 0)
    throw new Error('agent/Dockerfile has no ENTRYPOINT in its last stage');
  return last;
}
