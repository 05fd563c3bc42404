/** The agent's version, reported to the hub with every status. Kept in step with agent/package.json. */
export const AGENT_VERSION = '0.1.0';
