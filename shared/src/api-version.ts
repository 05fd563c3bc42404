/**
 * apiVersion of the documents Flotilla itself defines (rendered bundles, desired states).
 * A module of its own so that the agent can verify desired states without loading the
 * renderer and its YAML parser.
 */
export const FLOTILLA_API_VERSION = 'flotilla.dev/v1alpha1';
