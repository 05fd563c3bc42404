/** The CLI's version, as its package says. */
export const cliVersion = '0.1.0';
