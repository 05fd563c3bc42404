import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { executableTarget } from '@flotilla/renderer/build.ts';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

/** Where the layer puts the worker: Lambda extracts layers under /opt. */
export const rendererLayerBinary = '/opt/bin/flotilla-renderer';

export interface RendererLayerProps {
  /**
   * Path of `flotilla-renderer` built for linux/arm64, the functions' architecture:
   * `await ensureRenderer({ target: lambdaRendererTarget })` from
   * `@flotilla/renderer/build.ts` (the CDK app does this before it builds the stack).
   */
  readonly binary: string;
  readonly description: string;
}

export class RendererLayerError extends Error {
  readonly binary: string;

  constructor(binary: string, message: string) {
    super(`renderer.binary (${binary}): ${message}`);
    this.name = 'RendererLayerError';
    this.binary = binary;
  }
}

/**
 * A Lambda layer holding the render worker as `bin/flotilla-renderer`, so that a function
 * with the layer finds it at {@link rendererLayerBinary}. The layer is keyed by the
 * binary's sha256 (Go builds with -trimpath are reproducible): an unchanged worker is
 * neither uploaded nor published again. A binary for another machine is refused here,
 * at synth, rather than by Lambda with "exec format error" at the first render.
 */
export class RendererLayer extends Construct {
  readonly layer: LayerVersion;

  constructor(scope: Construct, id: string, props: RendererLayerProps) {
    super(scope, id);
    const { binary } = props;
    if (!existsSync(binary)) throw new RendererLayerError(binary, 'no such file');
    const target = executableTarget(binary);
    if (target?.goos !== 'linux' || target.goarch !== 'arm64') {
      throw new RendererLayerError(
        binary,
        `${target ? `built for ${target.goos}/${target.goarch}` : 'not a 64-bit ELF executable'}; the hub's functions run on linux/arm64: build it with ensureRenderer({ target: lambdaRendererTarget })`,
      );
    }
    const sha256 = createHash('sha256').update(readFileSync(binary)).digest('hex');
    this.layer = new LayerVersion(this, 'Layer', {
      description: props.description,
      compatibleArchitectures: [Architecture.ARM_64],
      compatibleRuntimes: [Runtime.NODEJS_24_X],
      code: Code.fromAsset(dirname(binary), {
        assetHashType: AssetHashType.CUSTOM,
        assetHash: `flotilla-renderer-layer-1-${sha256}`,
        // Copies the one file into the layout Lambda extracts to /opt.
        bundling: {
          // Never pulled: the local copy below always succeeds, so CDK needs no Docker.
          image: DockerImage.fromRegistry('scratch'),
          local: {
            tryBundle(outputDir: string): boolean {
              mkdirSync(join(outputDir, 'bin'), { recursive: true });
              const target = join(outputDir, 'bin', 'flotilla-renderer');
              copyFileSync(binary, target);
              chmodSync(target, 0o755);
              return true;
            },
          },
        },
      }),
    });
  }
}
