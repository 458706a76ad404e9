import { formatDateTime } from '../format.js';
import { type Change, describeChange } from '../services/notifications.js';
import type { User } from '../services/users.js';
import { AdminNav } from './admin-nav.js';
import { Layout } from './layout.js';

export interface ChangesPageProps {
  user: User;
  changes: Change[];
  nextCursor: string | null;
  status: { pending: number; lastError: string | null; email: boolean; webhook: boolean };
}

export function ChangesPage({ user, changes, nextCursor, status }: ChangesPageProps) {
  const channels = [status.email ? 'email' : null, status.webhook ? 'webhook' : null].filter(Boolean);
  return (
    <Layout title="Changes" user={user}>
      <h1>Admin</h1>
      <AdminNav current="/admin/changes" />
      <p class="muted">
        Uploads, replacements and deletions by members, and files found in the bucket that were put there
        outside the app. Also sent by{' '}
        {channels.length ? channels.join(' and ') : 'no other channel (see README)'}.
        {status.pending > 0 ? ` ${status.pending} deliveries waiting.` : ''}
      </p>
      {status.lastError ? (
        <p class="error" role="alert">
          Last delivery error: {status.lastError}
        </p>
      ) : null}
      {changes.length === 0 ? (
        <p class="empty">No changes yet.</p>
      ) : (
        <ul class="changes">
          {changes.map((c) => (
            <li>
              <time datetime={new Date(c.at).toISOString()}>{formatDateTime(c.at)}</time>{' '}
              {c.imageId && c.action !== 'delete' ? (
                <a href={`/images/${c.imageId}`}>{describeChange(c)}</a>
              ) : (
                describeChange(c)
              )}
            </li>
          ))}
        </ul>
      )}
      {nextCursor ? (
        <p>
          <a class="button" href={`/admin/changes?cursor=${nextCursor}`}>
            Older changes
          </a>
        </p>
      ) : null}
    </Layout>
  );
}
