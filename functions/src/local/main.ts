/**
 * The local hub on the command line:
 *
 *   node functions/src/local/main.ts [--port 8080] [--host 127.0.0.1]
 *
 * Configuration comes from the environment, exactly as the Lambda functions read it
 * (see docs/hub-api.md): at least AWS_REGION, FLOTILLA_FLEET_REPO_URL,
 * FLOTILLA_SIGNING_KEY, FLOTILLA_DYNAMODB_ENDPOINT / FLOTILLA_SQS_ENDPOINT for local
 * services, and FLOTILLA_ADMIN_KEY_SHA256 for the admin routes. Prints the URL on stdout.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { jsonLogger } from '../http/log.ts';
import { openLocalNotifier } from './notifier.ts';
import { startLocalHub } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`--port must be a port number, got "${values.port}"\n`);
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
if (config.adminAuth === 'iam') {
  process.stderr.write(
    '[flotilla] admin routes expect IAM identities, which only API Gateway supplies: set FLOTILLA_ADMIN_KEY_SHA256 to use an admin key locally\n',
  );
}
// Local services take any credentials; real AWS gets the usual provider chain.
const local = Boolean(config.dynamodbEndpoint || config.sqsEndpoint);
const hasKeys = Boolean(process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE);
const credentials = local && !hasKeys ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined;
// Fleet events are delivered in process, to the providers of the fleet repo's notifications/.
const notifier = await openLocalNotifier(process.env, jsonLogger(), credentials ? { credentials } : {});
const hub = await startLocalHub({
  config,
  port,
  host: values.host,
  events: notifier,
  ...(credentials ? { credentials } : {}),
});
process.stdout.write(`${hub.url}\n`);
process.stderr.write(
  `[flotilla] local hub listening on ${hub.url} (prefix ${config.prefix}); Ctrl-C stops it\n`,
);

const stop = async () => {
  await hub.stop();
  await notifier.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
