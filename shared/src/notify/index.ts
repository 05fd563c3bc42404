export {
  EventSeverity,
  type EventSink,
  type FleetEvent,
  FleetEventType,
  noEvents,
} from './events.ts';
