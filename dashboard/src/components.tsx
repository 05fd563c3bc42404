import type { ComponentChildren } from 'preact';
import type { CellState } from './model.ts';

/** A state as text with its colour: the colour only repeats what the word says. */
export function StateBadge(props: { state: CellState | string; title?: string }) {
  return (
    <span class={`state state-${props.state}`} title={props.title}>
      {props.state}
    </span>
  );
}

export function Section(props: { title: string; children: ComponentChildren }) {
  return (
    <section aria-label={props.title}>
      <h2>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <p class="empty">{props.children}</p>;
}
