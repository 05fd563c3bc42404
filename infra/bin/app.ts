/**
 * The CDK app: one Flotilla hub stack, configured from the `flotilla` context (cdk.json,
 * or `-c flotilla:<field>=<value>` on the command line) and checked with cdk-nag's
 * AwsSolutions rules. The only place in infra/ that reads context or the environment.
 * Synthesizes offline: without an account and region the stack is environment-agnostic.
 *
 * Before the stack is built, the render worker is built for the functions' platform
 * (linux/arm64) from the Go module proxy, cached by its sources: minutes the first time,
 * a few milliseconds afterwards. The stack ships it as a layer.
 */
import { ensureRenderer, lambdaRendererTarget, RendererBuildError } from '@flotilla/renderer/build.ts';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  FlotillaHubConfigError,
  flotillaConfigFromContext,
  resolveFlotillaHubConfig,
} from '../src/config.ts';
import { FlotillaHubStack } from '../src/hub-stack.ts';

const app = new App();
let hub: ReturnType<typeof resolveFlotillaHubConfig>;
try {
  hub = resolveFlotillaHubConfig(flotillaConfigFromContext(app.node.getAllContext()));
} catch (err) {
  if (!(err instanceof FlotillaHubConfigError)) throw err;
  process.stderr.write(
    `${err.message}\n(set them in cdk.json under "flotilla", or with -c flotilla:<field>=<value>)\n`,
  );
  process.exit(1);
}
let rendererBinary: string;
try {
  rendererBinary = await ensureRenderer({ target: lambdaRendererTarget });
} catch (err) {
  if (!(err instanceof RendererBuildError)) throw err;
  process.stderr.write(`could not build the render worker for the hub's functions: ${err.message}\n`);
  process.exit(1);
}
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;
new FlotillaHubStack(app, `${hub.prefix}-hub`, {
  description: `Flotilla hub "${hub.prefix}": serverless hub-spoke Kubernetes fleet manager`,
  ...(account && region ? { env: { account, region } } : {}),
  hub,
  renderer: { binary: rendererBinary },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
