import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import type { FlotillaHubConfig } from '../../../infra/src/config.ts';
import { FlotillaHubStack } from '../../../infra/src/hub-stack.ts';

/** A resolved template value: an intrinsic (`{Ref}`, `{Fn::GetAtt}`, `{Fn::Join}`) or a literal. */
export type CfnValue = string | number | boolean | null | CfnValue[] | { [key: string]: CfnValue };

export interface SynthesizedHub {
  readonly app: App;
  readonly stack: FlotillaHubStack;
  readonly template: Template;
  readonly resources: Record<
    string,
    { Type: string; Properties?: Record<string, CfnValue>; [k: string]: unknown }
  >;
}

const fakes = mkdtempSync(join(tmpdir(), 'flotilla-fake-renderer-'));
process.once('exit', () => rmSync(fakes, { recursive: true, force: true }));

/** ELF `e_machine` of the two architectures the tests name. */
export const elfMachine = { aarch64: 183, x86_64: 62 } as const;

/**
 * A stand-in for `flotilla-renderer` that is only the 64-byte header of a 64-bit
 * little-endian ELF executable for `machine`: the template does not depend on the rest,
 * and the real linux/arm64 build is tested in test/integration/infra/renderer-layer.test.ts.
 * `body` varies the content (and so the layer's asset hash).
 */
export function fakeRenderer(machine: number = elfMachine.aarch64, body = ''): string {
  const header = Buffer.alloc(64);
  header.write('\x7fELF', 0, 'latin1');
  header[4] = 2; // ELFCLASS64
  header[5] = 1; // ELFDATA2LSB
  header[6] = 1; // EV_CURRENT
  header.writeUInt16LE(2, 16); // ET_EXEC
  header.writeUInt16LE(machine, 18);
  const dir = join(fakes, `${machine}-${Buffer.from(body).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'flotilla-renderer');
  writeFileSync(path, Buffer.concat([header, Buffer.from(body)]), { mode: 0o755 });
  return path;
}

/**
 * Synthesizes one hub stack. Bundling is skipped unless asked for (it is tested once, on
 * its own): the template is the same either way but for the code asset. CDK's built-in
 * CloudFormation validation (schemas and lint rules, a few seconds) runs only when asked
 * for, and then fails the synth on any finding.
 */
export function synthHub(
  hub: FlotillaHubConfig,
  opts: { bundle?: boolean; outdir?: string; cfnValidation?: boolean; rendererBinary?: string } = {},
): SynthesizedHub {
  const app = new App({
    ...(opts.outdir ? { outdir: opts.outdir } : {}),
    builtinCloudFormationValidation: opts.cfnValidation ?? false,
    context: {
      ...(opts.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      '@aws-cdk/core:validateAgainstDefaultRules': true,
    },
  });
  const stack = new FlotillaHubStack(app, 'hub', {
    hub,
    renderer: { binary: opts.rendererBinary ?? fakeRenderer() },
  });
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: SynthesizedHub['resources'] };
  return { app, stack, template, resources: json.Resources };
}

export function resourcesOfType(hub: SynthesizedHub, type: string) {
  return Object.entries(hub.resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => ({ id, props: (r.Properties ?? {}) as Record<string, CfnValue>, resource: r }));
}

/** Every `aws:cdk:acknowledged-rules` entry in the tree: rule id → reason, with the construct path. */
export function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  const out: { path: string; id: string; reason: string }[] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== 'aws:cdk:acknowledged-rules') continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.push({ path: c.node.path, id, reason });
      }
    }
  }
  return out;
}

/** Policy statements of a role's inline default policy. */
export function roleStatements(hub: SynthesizedHub, roleLogicalIdPrefix: string) {
  return resourcesOfType(hub, 'AWS::IAM::Policy')
    .filter(({ props }) => JSON.stringify(props.Roles).includes(`"${roleLogicalIdPrefix}`))
    .flatMap(({ props }) => (props.PolicyDocument as unknown as { Statement: Statement[] }).Statement);
}

export interface Statement {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource: CfnValue;
}

export function actionsOf(s: Statement): string[] {
  return Array.isArray(s.Action) ? s.Action : [s.Action];
}

/** A template value as text the way cdk-nag prints it: `arn:<AWS::Partition>:sqs:...`, `<Logical.Arn>`. */
export function flat(value: CfnValue): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    if ('Ref' in value) return `<${String(value.Ref)}>`;
    if ('Fn::GetAtt' in value) return `<${(value['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in value) {
      const [sep, parts] = value['Fn::Join'] as [string, CfnValue[]];
      return parts.map(flat).join(sep);
    }
  }
  return JSON.stringify(value);
}
