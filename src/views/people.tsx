import { countOf, formatBytes, formatDateTime } from '../format.js';
import type { PersonSummary } from '../services/people.js';
import { ROLES, type User } from '../services/users.js';
import { AdminNav } from './admin-nav.js';
import { Email } from './components/email.js';
import { Notice } from './components/messages.js';
import { PageHeading } from './components/page-heading.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { UsageMeter } from './components/usage-meter.js';
import { Layout } from './layout.js';

const quotaText = (used: number, quota: number | null, format: (n: number) => string) =>
  quota === null ? format(used) : `${format(used)} of ${format(quota)}`;

interface PeoplePageProps {
  user: User;
  people: PersonSummary[];
  notice?: string | undefined;
}

export function PeoplePage({ user, people, notice }: PeoplePageProps) {
  return (
    <Layout title="Users" user={user}>
      <h1>Admin</h1>
      <AdminNav current="/admin" />
      <Notice message={notice} />
      <TableScroll label="Users">
        <table>
          <caption>{countOf(people.length, 'user')}</caption>
          <TableHead columns={['Email', 'Role', 'State', 'Images', 'Storage', 'Last login']} actions />
          <tbody>
            {people.map((p) => (
              <tr>
                <td>
                  <Email address={p.email} />
                </td>
                <td>
                  <span class={`role role-${p.role}`}>{p.role}</span>
                </td>
                <td>{p.isDisabled ? 'disabled' : 'active'}</td>
                <td>{quotaText(p.imageCount, p.quotaImages, String)}</td>
                <td>{quotaText(p.bytesUsed, p.quotaBytes, formatBytes)}</td>
                <td>{p.lastLoginAt ? formatDateTime(p.lastLoginAt) : 'never'}</td>
                <td class="actions">
                  <a href={`/admin/users/${p.id}`}>
                    Manage<span class="visually-hidden"> {p.email}</span>
                  </a>
                  <a href={`/users/${p.id}`}>
                    Gallery<span class="visually-hidden"> of {p.email}</span>
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableScroll>
      <p>
        <a href="/admin/invites">Invite someone</a>
      </p>
    </Layout>
  );
}

export interface PersonPageProps {
  user: User;
  person: PersonSummary;
  notice?: string | undefined;
  error?: string | undefined;
}

/** One account: role, state, quota and deletion, each its own small form. */
export function PersonPage({ user, person, notice, error }: PersonPageProps) {
  const base = `/admin/users/${person.id}`;
  const mib = person.quotaBytes === null ? '' : String(Math.round((person.quotaBytes / 2 ** 20) * 100) / 100);
  return (
    <Layout title={person.email} user={user}>
      <PageHeading
        back={{ href: '/admin', label: 'All users' }}
        title={person.email}
        notice={notice}
        error={error}
      />
      <div class="admin-grid">
        <section class="card">
          <h2>Account</h2>
          <dl>
            <dt>State</dt>
            <dd>{person.isDisabled ? 'disabled' : 'active'}</dd>
            <dt>Created</dt>
            <dd>{formatDateTime(person.createdAt)}</dd>
            <dt>Last login</dt>
            <dd>{person.lastLoginAt ? formatDateTime(person.lastLoginAt) : 'never'}</dd>
            <dt>Images</dt>
            <dd>
              {person.imageCount} ({formatBytes(person.bytesUsed)})
            </dd>
          </dl>
          <form method="post" action={`${base}/role`} class="stack">
            <label for="role">Role</label>
            <select id="role" name="role">
              {ROLES.map((r) => (
                <option value={r} selected={r === person.role}>
                  {r}
                </option>
              ))}
            </select>
            <button type="submit">Change role</button>
          </form>
          <form method="post" action={`${base}/${person.isDisabled ? 'enable' : 'disable'}`} class="stack">
            <p class="muted">
              {person.isDisabled
                ? 'This account cannot log in.'
                : 'Disabling signs the account out everywhere at once.'}
            </p>
            <button type="submit" class={person.isDisabled ? '' : 'danger'}>
              {person.isDisabled ? 'Enable account' : 'Disable account'}
            </button>
          </form>
        </section>
        <section class="card">
          <h2>Quota</h2>
          <UsageMeter
            usage={{ images: person.imageCount, bytes: person.bytesUsed }}
            quota={{ bytes: person.quotaBytes, images: person.quotaImages }}
            label="Uses"
          />
          <form method="post" action={`${base}/quota`} class="stack">
            <label for="quota-mib">Storage limit in MiB (blank: no limit)</label>
            <input id="quota-mib" name="mib" inputmode="decimal" value={mib} />
            <label for="quota-images">Image limit (blank: no limit)</label>
            <input
              id="quota-images"
              name="images"
              inputmode="numeric"
              value={person.quotaImages === null ? '' : String(person.quotaImages)}
            />
            <button type="submit">Save quota</button>
          </form>
        </section>
        <section class="card">
          <h2>Delete account</h2>
          <p>
            Deletes the account, its share links and all {person.imageCount} of its images, from the bucket
            too. This cannot be undone.
          </p>
          <form method="post" action={`${base}/delete`} class="stack">
            <label for="confirm-email">Type {person.email} to confirm</label>
            <input id="confirm-email" name="confirm" autocomplete="off" required />
            <button type="submit" class="danger">
              Delete account and images
            </button>
          </form>
        </section>
      </div>
    </Layout>
  );
}
