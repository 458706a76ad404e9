import { formatDateTime } from '../format.js';
import { can } from '../policy.js';
import type { AccessKey, KeyScope, StoreEndpoint } from '../services/access-keys.js';
import type { SessionInfo } from '../services/sessions.js';
import type { User } from '../services/users.js';
import { AccessKeysSection } from './access-keys.js';
import { Notice } from './components/messages.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { type Usage, UsageMeter } from './components/usage-meter.js';
import { deviceOf } from './device.js';
import { Layout } from './layout.js';

/** The signed-in person's own account: who they are, what they store against their quota. */
export interface AccountPageProps {
  user: User;
  usage: Usage;
  sessions: SessionInfo[];
  /** the session of this request */
  currentSessionId: string;
  notice?: string | undefined;
  /** the person's S3 keys, where to use them, and why a new one was refused */
  accessKeys: {
    keys: AccessKey[];
    store: StoreEndpoint | null;
    error?: string | undefined;
    /** what just happened to a key: shown in the section the page lands on */
    notice?: string | undefined;
    chosen?: KeyScope;
  };
}

export function AccountPage({
  user,
  usage,
  sessions,
  currentSessionId,
  notice,
  accessKeys,
}: AccountPageProps) {
  // This browser first, then the others as they were last seen.
  const listed = [...sessions].sort(
    (a, b) => Number(b.id === currentSessionId) - Number(a.id === currentSessionId),
  );
  const others = listed.length - 1;
  const hasQuota = user.quotaBytes !== null || user.quotaImages !== null;
  return (
    <Layout title="Your account" user={user}>
      <h1>Your account</h1>
      <Notice message={notice} />
      <section class="card narrow">
        <dl>
          <dt>Email</dt>
          <dd>{user.email}</dd>
          <dt>Role</dt>
          <dd>
            <span class={`role role-${user.role}`}>{user.role}</span>
          </dd>
        </dl>
        <UsageMeter
          usage={usage}
          quota={{ bytes: user.quotaBytes, images: user.quotaImages }}
          label="You use"
        />
        <p class="muted">
          {hasQuota
            ? 'The limits are set by an admin; ask one for more room. Uploads still on their way count until they finish.'
            : 'An admin can set limits; none is set for you.'}
        </p>
        <p>
          <a class="button secondary" href="/account/password">
            Change password
          </a>
        </p>
      </section>
      <section class="card sessions" aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Where you are signed in</h2>
        <TableScroll label="Signed-in sessions">
          <table>
            <TableHead columns={['Browser', 'Last seen', 'Address', 'Signed in']} actions />
            <tbody>
              {listed.map((s) => (
                <tr>
                  <td>
                    {deviceOf(s.userAgent)}
                    {s.id === currentSessionId ? <strong class="this-browser"> (this browser)</strong> : null}
                  </td>
                  <td>{s.id === currentSessionId ? 'now' : formatDateTime(s.lastSeenAt)}</td>
                  <td>{s.ip || '—'}</td>
                  <td>{formatDateTime(s.createdAt)}</td>
                  <td class="actions">
                    {s.id === currentSessionId ? null : (
                      <PostButton
                        action={`/account/sessions/${s.id}/end`}
                        label="Sign out"
                        hiddenLabel={`${deviceOf(s.userAgent)}, last seen ${formatDateTime(s.lastSeenAt)}`}
                        danger
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
        {others > 0 ? (
          <PostButton action="/account/sessions/end-others" label="Sign out everywhere else" danger />
        ) : (
          <p class="muted">This is the only browser signed in to your account.</p>
        )}
      </section>
      {can(user, 'image.upload') ? (
        <AccessKeysSection
          user={user}
          keys={accessKeys.keys}
          store={accessKeys.store}
          error={accessKeys.error}
          notice={accessKeys.notice}
          {...(accessKeys.chosen ? { chosen: accessKeys.chosen } : {})}
        />
      ) : null}
    </Layout>
  );
}
