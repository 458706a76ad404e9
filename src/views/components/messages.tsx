type MessageProps = { message?: string | undefined };

/** A line the user should read: announced at once (alert) for errors, politely (status) for notices. */
function Message(props: { text?: string | undefined; kind: 'error' | 'notice' }) {
  if (!props.text) return null;
  return (
    <p class={props.kind} role={props.kind === 'error' ? 'alert' : 'status'}>
      {props.text}
    </p>
  );
}

export const ErrorMessage = ({ message }: MessageProps) => <Message text={message} kind="error" />;

export const Notice = ({ message }: MessageProps) => <Message text={message} kind="notice" />;
