import type { Command } from '../core/command.ts';
import { bootstrapCommand } from './bootstrap.ts';
import {
  clusterGetCommand,
  clustersCommand,
  labelCommand,
  removeCommand,
  rotateTokenCommand,
} from './cluster.ts';
import { dashboardCommand } from './dashboard.ts';
import { diffCommand } from './diff.ts';
import { renderCommand, targetsCommand } from './fleet.ts';
import { historyCommand, rollbackCommand } from './history.ts';
import { localAgentListCommand, localAgentStopCommand } from './local-agent.ts';
import { policyCheckCommand } from './policy.ts';
import {
  rolloutAbortCommand,
  rolloutListCommand,
  rolloutPauseCommand,
  rolloutPromoteCommand,
  rolloutResumeCommand,
  rolloutStatusCommand,
} from './rollout.ts';
import { secretsRecipientsCommand, secretsRotateCommand } from './secrets.ts';
import { secretsCheckCommand, secretsEncryptCommand } from './secrets-files.ts';
import { sourceAddCommand, sourceListCommand, sourceRemoveCommand, sourceSyncCommand } from './source.ts';
import { statusCommand, syncCommand } from './status.ts';
import { tenantKeyCreateCommand, tenantKeyListCommand, tenantKeyRevokeCommand } from './tenant.ts';
import { tokenCreateCommand, tokenListCommand, tokenRevokeCommand } from './token.ts';

/** Every command, in the order `flotilla --help` lists them. */
export const commands: readonly Command[] = [
  bootstrapCommand,
  clustersCommand,
  labelCommand,
  targetsCommand,
  renderCommand,
  diffCommand,
  policyCheckCommand,
  statusCommand,
  dashboardCommand,
  syncCommand,
  historyCommand,
  rollbackCommand,
  rolloutListCommand,
  rolloutStatusCommand,
  rolloutPauseCommand,
  rolloutResumeCommand,
  rolloutPromoteCommand,
  rolloutAbortCommand,
  tokenCreateCommand,
  tokenListCommand,
  tokenRevokeCommand,
  tenantKeyCreateCommand,
  tenantKeyListCommand,
  tenantKeyRevokeCommand,
  sourceListCommand,
  sourceAddCommand,
  sourceRemoveCommand,
  sourceSyncCommand,
  secretsEncryptCommand,
  secretsCheckCommand,
  secretsRecipientsCommand,
  secretsRotateCommand,
  clusterGetCommand,
  rotateTokenCommand,
  removeCommand,
  localAgentListCommand,
  localAgentStopCommand,
];

/** Command groups: `flotilla <group> <command>`. */
export const groups = [
  { name: 'token', summary: 'one-time registration tokens' },
  { name: 'tenant', summary: "tenants' admin keys (platform admin): tenant key create, list, revoke" },
  { name: 'tenant key', summary: "a tenant's admin keys (platform admin): create, list, revoke" },
  {
    name: 'source',
    summary: "fleet sources, the repositories read besides the hub's own: list, add, remove, sync",
  },
  { name: 'policy', summary: "the fleet repo's admission policies: check" },
  { name: 'rollout', summary: 'progressive rollouts: list, status, pause, resume, promote, abort' },
  {
    name: 'secrets',
    summary: 'SOPS files for the clusters that get them: encrypt, check, recipients, rotate',
  },
  { name: 'cluster', summary: 'one registered cluster: show, rotate its token, remove it' },
  { name: 'local-agent', summary: 'agents run on this machine by bootstrap --run-agent local' },
] as const;
