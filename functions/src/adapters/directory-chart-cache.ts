/**
 * Chart archives in a directory (Lambda's /tmp, a CLI cache), one file per
 * digest, so a warm Lambda or the next CLI run downloads a chart version once.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChartCache } from '@flotilla/shared/charts';

const digestPattern = /^sha256:([0-9a-f]{64})$/;

export class DirectoryChartCache implements ChartCache {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async get(digest: string): Promise<Uint8Array | undefined> {
    const path = this.#path(digest);
    if (!path) return undefined;
    let data: Uint8Array;
    try {
      data = await readFile(path);
    } catch {
      return undefined;
    }
    // A file cut short or changed on disk is a miss, not a chart.
    if (`sha256:${createHash('sha256').update(data).digest('hex')}` !== digest) {
      await rm(path, { force: true });
      return undefined;
    }
    return data;
  }

  async put(digest: string, archive: Uint8Array): Promise<void> {
    const path = this.#path(digest);
    if (!path) return;
    await mkdir(this.#dir, { recursive: true });
    // Written aside and renamed, so a reader never sees half a file.
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, archive);
    await rename(tmp, path);
  }

  #path(digest: string): string | undefined {
    const hex = digestPattern.exec(digest)?.[1];
    return hex ? join(this.#dir, `sha256-${hex}.tgz`) : undefined;
  }
}
