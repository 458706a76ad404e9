/** One button that posts to `action` (a state change is always a POST), with any hidden fields. */
export function PostButton(props: {
  action: string;
  label: string;
  danger?: boolean;
  fields?: Record<string, string>;
  /** more words for screen readers, when several such buttons share one label */
  hiddenLabel?: string;
}) {
  return (
    <form method="post" action={props.action} class="inline">
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" {...(props.danger ? { class: 'danger' } : {})}>
        {props.label}
        {props.hiddenLabel ? <span class="visually-hidden"> {props.hiddenLabel}</span> : null}
      </button>
    </form>
  );
}
