export {
  type FlotillaHubConfig,
  FlotillaHubConfigError,
  flotillaConfigFromContext,
  type ResolvedFlotillaHubConfig,
  resolveFlotillaHubConfig,
  type SigningKeyConfig,
} from './config.ts';
export { FlotillaHub, type FlotillaHubProps, hubMetricNames } from './flotilla-hub.ts';
export { FlotillaHubStack, type FlotillaHubStackProps } from './hub-stack.ts';
export { apiAccess, type FunctionAccess, syncAccess } from './permissions.ts';
