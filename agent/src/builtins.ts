/**
 * Node built-ins the agent uses, loaded with `require`. An ESM import of a built-in reads
 * every one of its exports, lazy ones included: `node:http` then loads undici (for its
 * WebSocket export) and `node:fs` loads fs/promises, readline and the REPL history, some
 * 15 MB that an idle agent would carry for nothing.
 */
import type * as Fs from 'node:fs';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

const require = createRequire(import.meta.url);

export const nodeHttp = require('node:http') as typeof Http;
export const nodeHttps = require('node:https') as typeof Https;
export const nodeTls = require('node:tls') as typeof Tls;
export const readFileSync = (require('node:fs') as typeof Fs).readFileSync;
