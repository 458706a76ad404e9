import { formatDateTime } from '../format.js';
import { AUDIT_ACTIONS, type AuditAction, type AuditEntry, type AuditFilter } from '../services/audit.js';
import type { User } from '../services/users.js';
import { AdminNav } from './admin-nav.js';
import { Email } from './components/email.js';
import { ErrorMessage } from './components/messages.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

/** What each action reads as on the page (the CSV export keeps the codes, for scripts). */
const AUDIT_ACTION_WORDS: Record<AuditAction, string> = {
  signup: 'signed up',
  login: 'logged in',
  login_failed: 'failed to log in',
  logout: 'logged out',
  password_change: 'changed password',
  password_reset: 'reset a password',
  upload: 'uploaded',
  replace: 'replaced a file',
  rename: 'renamed',
  delete: 'deleted',
  trash: 'moved to the trash',
  restore: 'restored from the trash',
  visibility: 'changed who sees',
  share_create: 'created a share link',
  share_revoke: 'revoked a share link',
  share_open: 'opened a share link',
  download: 'downloaded an original',
  share_download: 'downloaded from a share link',
  user_create: 'created an account',
  role_change: 'changed role',
  disable: 'disabled an account',
  enable: 'enabled an account',
  user_delete: 'deleted an account',
  quota_change: 'changed quota',
  invite_create: 'created an invite',
  invite_revoke: 'revoked an invite',
  outside_upload: 'added from outside the app',
  outside_replace: 'replaced from outside the app',
  outside_delete: 'deleted from outside the app',
  throttled: 'was throttled',
  audit_purge: 'purged old entries',
  album_create: 'created an album',
  album_rename: 'renamed an album',
  album_delete: 'deleted an album',
  album_share: 'shared an album',
  key_create: 'created an S3 key',
  key_revoke: 'revoked an S3 key',
  s3_request: 'used an S3 key',
  guest_link_create: 'made a guest link',
  guest_link_revoke: 'turned off a guest link',
  guest_link_turn_on: 'turned a guest link on again',
  guest_upload: 'guest link: file kept',
  guest_open: 'guest link: visits',
  guest_upload_refused: 'guest link: file refused',
};

/** The filter as query parameters, so paging and CSV export keep it. */
function filterQuery(filter: AuditFilter, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...filter, ...extra })) if (value) params.set(name, value);
  const text = params.toString();
  return text ? `?${text}` : '';
}

export interface AuditPageProps {
  user: User;
  filter: AuditFilter;
  entries: AuditEntry[];
  nextCursor: string | null;
  /** null: entries are kept for ever */
  retentionDays: number | null;
  error?: string | undefined;
}

export function AuditPage({ user, filter, entries, nextCursor, retentionDays, error }: AuditPageProps) {
  return (
    <Layout title="Audit log" user={user}>
      <h1>Admin</h1>
      <AdminNav current="/admin/audit" />
      <p class="muted">
        {retentionDays === null
          ? 'Entries are kept for ever (set AUDIT_RETENTION_DAYS to limit that).'
          : `Entries older than ${retentionDays} days are deleted every hour; each purge is logged as “${AUDIT_ACTION_WORDS.audit_purge}”.`}
      </p>
      <form method="get" action="/admin/audit" class="filters">
        <div>
          <label for="f-email">User email</label>
          <input id="f-email" name="email" type="search" value={filter.email ?? ''} />
        </div>
        <div>
          <label for="f-action">Action</label>
          <select id="f-action" name="action">
            <option value="">any</option>
            {AUDIT_ACTIONS.map((a) => (
              <option value={a} selected={a === filter.action}>
                {AUDIT_ACTION_WORDS[a]}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="f-from">From (UTC)</label>
          <input id="f-from" name="from" type="date" value={filter.from ?? ''} />
        </div>
        <div>
          <label for="f-to">To (UTC)</label>
          <input id="f-to" name="to" type="date" value={filter.to ?? ''} />
        </div>
        <button type="submit">Filter</button>
        <a class="button secondary" href={`/admin/audit.csv${filterQuery(filter)}`}>
          Export CSV
        </a>
      </form>
      <ErrorMessage message={error} />
      {entries.length === 0 ? (
        <p class="empty">No entries match.</p>
      ) : (
        <TableScroll label="Audit log">
          <table class="audit">
            <caption class="visually-hidden">Audit log entries, newest first</caption>
            <TableHead columns={['When', 'Who', 'Action', 'Target', 'Detail', 'IP']} />
            <tbody>
              {entries.map((e) => (
                <tr>
                  <td>{formatDateTime(e.at)}</td>
                  <td>{e.actorEmail ? <Email address={e.actorEmail} /> : 'system'}</td>
                  <td>{AUDIT_ACTION_WORDS[e.action] ?? e.action}</td>
                  <td>{e.target ?? ''}</td>
                  <td>{e.detail ?? ''}</td>
                  <td>{e.ip ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {nextCursor ? (
        <p>
          <a class="button" href={`/admin/audit${filterQuery(filter, { cursor: nextCursor })}`}>
            Older entries
          </a>
        </p>
      ) : null}
    </Layout>
  );
}
