import { formatDateTime } from '../format.js';
import { AUDIT_ACTIONS, type AuditEntry, type AuditFilter } from '../services/audit.js';
import type { User } from '../services/users.js';
import { AdminNav } from './admin-nav.js';
import { ErrorMessage } from './components/messages.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

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
          : `Entries older than ${retentionDays} days are deleted every hour; each purge is logged as audit_purge.`}
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
                {a}
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
                  <td>{e.actorEmail ?? 'system'}</td>
                  <td>{e.action}</td>
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
