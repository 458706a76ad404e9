import type { Context } from 'hono';
import type { SignedInEnv } from '../env.js';
import type { KeyScope } from '../services/access-keys.js';
import { AccountPage } from '../views/account.js';

/**
 * The account page of the signed-in person, with a notice (a key's in the keys section, where the
 * page lands after a key changed) or a refused new key's message.
 */
export async function accountPage(
  c: Context<SignedInEnv>,
  o: {
    notice?: string | undefined;
    keyNotice?: string | undefined;
    keyError?: string;
    keyScope?: KeyScope;
  } = {},
) {
  const { user, session, services } = c.var;
  return (
    <AccountPage
      user={user}
      usage={await services.images.usage(user.id)}
      sessions={await services.sessions.listOf(user)}
      currentSessionId={session.id}
      notice={o.notice}
      accessKeys={{
        keys: await services.accessKeys.list(user),
        store: services.accessKeys.store,
        error: o.keyError,
        notice: o.keyNotice,
        ...(o.keyScope ? { chosen: o.keyScope } : {}),
      }}
    />
  );
}
