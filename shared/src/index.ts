export const coreName = 'flotilla' as const;
