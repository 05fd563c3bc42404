import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BedProcessError,
  freePort,
  type Log,
  type ManagedProcess,
  run,
  startProcess,
  waitUntilReady,
  withProgress,
} from './process.ts';

const javaDir = new URL('../java/', import.meta.url).pathname;

/** What the bed resolves from Maven Central, each from its own pom under test/bed/java. */
export const javaServices = {
  dynamodbLocal: { pom: 'dynamodb-local', artifact: 'software.amazon.dynamodb:DynamoDBLocal' },
  elasticmq: { pom: 'elasticmq', artifact: 'org.elasticmq:elasticmq-server_2.13' },
} as const;
export type JavaServiceName = keyof typeof javaServices;

export interface JavaService {
  readonly libDir: string;
  readonly version: string;
}

function pomVersion(pom: string, artifactId: string): string {
  const match = new RegExp(`<artifactId>${artifactId}</artifactId>\\s*<version>([^<]+)</version>`).exec(pom);
  if (!match?.[1]) throw new BedProcessError(`no version for ${artifactId} in pom`);
  return match[1];
}

/**
 * Copies a service's jars from Maven Central into the cache, once per pom content:
 * a changed pom gets a fresh directory, an interrupted copy never counts as done.
 */
export async function ensureJavaService(
  name: JavaServiceName,
  cacheDir: string,
  log: Log,
): Promise<JavaService> {
  const spec = javaServices[name];
  const pomPath = join(javaDir, spec.pom, 'pom.xml');
  const pom = readFileSync(pomPath, 'utf8');
  const artifactId = spec.artifact.split(':')[1] ?? '';
  const version = pomVersion(pom, artifactId);
  const stamp = createHash('sha256').update(pom).digest('hex').slice(0, 12);
  const dir = join(cacheDir, 'java', `${spec.pom}-${version}-${stamp}`);
  const libDir = join(dir, 'lib');
  if (existsSync(join(dir, 'complete'))) return { libDir, version };
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  await withProgress(
    log,
    `resolving ${spec.artifact}:${version} from Maven Central`,
    run(
      'mvn',
      [
        '-B',
        '-ntp',
        '-q',
        '-f',
        pomPath,
        'dependency:copy-dependencies',
        `-DoutputDirectory=${join(partial, 'lib')}`,
      ],
      {},
    ),
  );
  writeFileSync(join(partial, 'complete'), `${new Date().toISOString()}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return { libDir, version };
}

// Small heaps by default: these serve tests on a 2-core machine; benchmarks ask for more.
function jvmFlags(heapMb = 384): string[] {
  return [`-Xms64m`, `-Xmx${heapMb}m`, '-XX:+UseSerialGC', '-Xshare:auto'];
}

export interface RunningService {
  readonly endpoint: string;
  readonly version: string;
  readonly process: ManagedProcess;
}

/** DynamoDB Local, in memory, on a free loopback port. */
export async function startDynamoDbLocal(opts: {
  service: JavaService;
  dir: string;
  log: Log;
  heapMb?: number;
}): Promise<RunningService> {
  const port = await freePort();
  const nativeLibs = readdirSync(opts.service.libDir).filter((f) => f.startsWith('libsqlite4java'));
  if (nativeLibs.length === 0) {
    throw new BedProcessError(`sqlite4java native library missing in ${opts.service.libDir}`);
  }
  const proc = startProcess({
    name: 'dynamodb-local',
    command: 'java',
    args: [
      ...jvmFlags(opts.heapMb),
      `-Djava.library.path=${opts.service.libDir}`,
      '-cp',
      join(opts.service.libDir, '*'),
      'software.amazon.dynamodb.services.local.main.ServerRunner',
      '-inMemory',
      '-port',
      String(port),
    ],
    logPath: join(opts.dir, 'dynamodb-local.log'),
    // It writes a metadata file into its working directory; keep that in the bed's.
    cwd: opts.dir,
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitUntilReady(
    proc,
    async () => {
      // Any well-formed DynamoDB answer (even an auth error) means it is serving.
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.ListTables',
          authorization:
            'AWS4-HMAC-SHA256 Credential=bed/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
        },
        body: '{}',
      });
      return res.status < 500;
    },
    60_000,
  );
  opts.log(`dynamodb-local ${opts.service.version} ready at ${endpoint}`);
  return { endpoint, version: opts.service.version, process: proc };
}

/** ElasticMQ with the SQS JSON and query protocols, answering as `region`. */
export async function startElasticMq(opts: {
  service: JavaService;
  dir: string;
  region: string;
  accountId: string;
  log: Log;
  heapMb?: number;
}): Promise<RunningService> {
  const port = await freePort();
  const confPath = join(opts.dir, 'elasticmq.conf');
  writeFileSync(
    confPath,
    [
      'include classpath("application.conf")',
      `node-address { protocol = http, host = "127.0.0.1", port = ${port}, context-path = "" }`,
      `rest-sqs { enabled = true, bind-port = ${port}, bind-hostname = "127.0.0.1", sqs-limits = strict }`,
      'rest-stats { enabled = false }',
      `aws { region = "${opts.region}", accountId = "${opts.accountId}" }`,
      '',
    ].join('\n'),
  );
  const proc = startProcess({
    name: 'elasticmq',
    command: 'java',
    args: [
      ...jvmFlags(opts.heapMb),
      `-Dconfig.file=${confPath}`,
      '-cp',
      join(opts.service.libDir, '*'),
      'org.elasticmq.server.Main',
    ],
    logPath: join(opts.dir, 'elasticmq.log'),
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitUntilReady(
    proc,
    async () => {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.ListQueues' },
        body: '{}',
      });
      return res.ok;
    },
    90_000,
  );
  opts.log(`elasticmq ${opts.service.version} ready at ${endpoint} (region ${opts.region})`);
  return { endpoint, version: opts.service.version, process: proc };
}
