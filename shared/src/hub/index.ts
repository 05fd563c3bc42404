export * from './ports.ts';
export * from './tables.ts';
