import { readFileSync } from 'node:fs';
import { agentEnvironment, agentNodeArgs } from '@flotilla/shared/agent';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync(new URL('../../../agent/Dockerfile', import.meta.url), 'utf8');

describe('how the agent is started', () => {
  it('the image runs node with the agent options', () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entrypoint ?? 'null')).toEqual(['node', ...agentNodeArgs, 'agent/src/main.ts']);
  });

  it('the image warms its compile cache with the same options (the cache serves only those)', () => {
    const arg = /^ARG AGENT_NODE_ARGS="(.*)"$/m.exec(dockerfile)?.[1];
    expect(arg?.split(' ')).toEqual([...agentNodeArgs]);
    expect(dockerfile).toMatch(
      /RUN node \$AGENT_NODE_ARGS .*\n\s+&& \(node \$AGENT_NODE_ARGS agent\/src\/main\.ts/,
    );
  });

  it("the agent runs with V8's optimising tiers on and no native code", () => {
    for (const flag of ['--no-opt', '--no-maglev', '--no-sparkplug', '--jitless']) {
      expect(agentNodeArgs).not.toContain(flag);
      expect(dockerfile).not.toContain(flag);
    }
    expect(dockerfile).not.toMatch(/\bgcc\b|\.node\b|node-gyp/);
  });

  it('the image runs the agent with the agent environment (the last stage ENV)', () => {
    const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const env = /^ENV ((?:.*\\\n)*.*)$/m.exec(lastStage)?.[1] ?? '';
    for (const [key, value] of Object.entries(agentEnvironment)) {
      expect(env).toMatch(new RegExp(`(^|\\s)${key}=${value}(\\s|$)`));
    }
  });
});
