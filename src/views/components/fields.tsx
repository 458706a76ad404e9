import { EMAIL_MAX, PASSWORD_MAX, PASSWORD_MIN } from '../../limits.js';

/** The account's email with its label: the browser's password manager fills it as the username. */
export function EmailField({ value }: { value?: string | undefined }) {
  return (
    <>
      <label for="email">Email</label>
      <input
        id="email"
        name="email"
        type="email"
        autocomplete="username"
        required
        maxlength={EMAIL_MAX}
        value={value ?? ''}
      />
    </>
  );
}

/** A link's optional password (a share link's, a guest upload link's), as its maker sets it. */
export function LinkPasswordField({ id }: { id: string }) {
  return (
    <>
      <label for={id}>Password (optional)</label>
      <input id={id} name="password" type="password" autocomplete="new-password" maxlength={PASSWORD_MAX} />
    </>
  );
}

/**
 * An account password with its label. A new one (`isNew`) asks for the minimum length and says so
 * under the field; a current one only caps the length.
 */
export function PasswordField(props: { id: string; name: string; label: string; isNew: boolean }) {
  const hint = `${props.id}-hint`;
  return (
    <>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        name={props.name}
        type="password"
        autocomplete={props.isNew ? 'new-password' : 'current-password'}
        required
        {...(props.isNew ? { minlength: PASSWORD_MIN, 'aria-describedby': hint } : {})}
        maxlength={PASSWORD_MAX}
      />
      {props.isNew ? <small id={hint}>At least {PASSWORD_MIN} characters.</small> : null}
    </>
  );
}
