import type { User } from '../services/users.js';
import { EmailField, PasswordField } from './components/fields.js';
import { ErrorMessage, Notice } from './components/messages.js';
import { Layout } from './layout.js';

export function LoginPage(props: { email?: string; next?: string; error?: string; notice?: string }) {
  return (
    <Layout title="Log in" user={null}>
      <section class="card narrow">
        <h1>Log in</h1>
        <Notice message={props.notice} />
        <ErrorMessage message={props.error} />
        <form method="post" action="/login" class="stack">
          {props.next && props.next !== '/' ? <input type="hidden" name="next" value={props.next} /> : null}
          <EmailField value={props.email} />
          <PasswordField id="password" name="password" label="Password" isNew={false} />
          <button type="submit">Log in</button>
        </form>
        <p class="muted">
          No account? <a href="/signup">Sign up</a>
        </p>
      </section>
    </Layout>
  );
}

export interface SignupPageProps {
  email?: string;
  invite?: string;
  error?: string;
  /** set when sign-up is refused outright: the form is not shown */
  refusal?: string;
  isFirstUser: boolean;
}

export function SignupPage(props: SignupPageProps) {
  return (
    <Layout title={props.isFirstUser ? 'Create the administrator account' : 'Sign up'} user={null}>
      <section class="card narrow">
        <h1>{props.isFirstUser ? 'Create the administrator account' : 'Create your account'}</h1>
        {props.isFirstUser ? (
          <p class="notice">
            This gallery has no accounts yet. The first one manages it: it invites people, sets quotas and
            sees every change.
          </p>
        ) : null}
        {props.refusal ? (
          <>
            <ErrorMessage message={props.refusal} />
            <p>
              Already have an account? <a href="/login">Log in</a>
            </p>
          </>
        ) : (
          <>
            <ErrorMessage message={props.error} />
            <form method="post" action="/signup" class="stack">
              {props.invite ? <input type="hidden" name="invite" value={props.invite} /> : null}
              <EmailField value={props.email} />
              <PasswordField id="password" name="password" label="Password" isNew />
              <button type="submit">Sign up</button>
            </form>
          </>
        )}
      </section>
    </Layout>
  );
}

export function PasswordPage(props: { user: User; error?: string; notice?: string }) {
  return (
    <Layout title="Change password" user={props.user}>
      <section class="card narrow">
        <h1>Change password</h1>
        <p class="muted">Changing it signs you out everywhere else.</p>
        <Notice message={props.notice} />
        <ErrorMessage message={props.error} />
        <form method="post" action="/account/password" class="stack">
          <input type="text" name="username" autocomplete="username" value={props.user.email} hidden />
          <PasswordField id="current" name="current" label="Current password" isNew={false} />
          <PasswordField id="new-password" name="password" label="New password" isNew />
          <button type="submit">Change password</button>
        </form>
      </section>
    </Layout>
  );
}
