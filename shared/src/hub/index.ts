export * from './clusters.ts';
export * from './ports.ts';
export * from './preview.ts';
export * from './registration-tokens.ts';
export * from './status.ts';
export * from './sync.ts';
export * from './tables.ts';
