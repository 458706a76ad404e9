import { formatDateTime } from '../format.js';
import type { Invite } from '../services/invites.js';
import type { User } from '../services/users.js';
import { ROLES } from '../services/users.js';
import { AdminNav } from './admin-nav.js';
import { ErrorMessage } from './components/messages.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

export interface InvitesPageProps {
  user: User;
  invites: Invite[];
  signup: 'open' | 'invite' | 'closed';
  /** the link just created: shown once, since only its hash is kept */
  newLink?: string;
  error?: string;
}

export function InvitesPage({ user, invites, signup, newLink, error }: InvitesPageProps) {
  return (
    <Layout title="Invites" user={user}>
      <h1>Admin</h1>
      <AdminNav current="/admin/invites" />
      <h2>Invites</h2>
      <p class="muted">
        Sign-up on this server is <strong>{signup}</strong>.{' '}
        {signup === 'invite' ? 'New people need one of these single-use links.' : null}
        {signup === 'closed' ? 'Invite links still work.' : null} Links expire after 7 days.
      </p>
      <ErrorMessage message={error} />
      {newLink ? (
        <div class="notice" role="status">
          <p>
            <strong>New invite link</strong> — copy it now; it will not be shown again:
          </p>
          <label for="new-link">Invite link</label>
          <input id="new-link" class="copy" readonly value={newLink} />
        </div>
      ) : null}
      <form method="post" action="/admin/invites" class="row">
        <label for="role">Role for the new account</label>
        <select id="role" name="role">
          {ROLES.map((r) => (
            <option value={r} selected={r === 'member'}>
              {r}
            </option>
          ))}
        </select>
        <button type="submit">Create invite link</button>
      </form>
      {invites.length === 0 ? (
        <p class="empty">No invites yet.</p>
      ) : (
        <TableScroll label="Invites">
          <table>
            <caption class="visually-hidden">Invites</caption>
            <TableHead columns={['Role', 'Created', 'Expires', 'State']} actions />
            <tbody>
              {invites.map((i) => (
                <tr>
                  <td>{i.role}</td>
                  <td>
                    {formatDateTime(i.createdAt)}
                    {i.createdByEmail ? ` by ${i.createdByEmail}` : ''}
                  </td>
                  <td>{formatDateTime(i.expiresAt)}</td>
                  <td>{i.state === 'used' && i.usedByEmail ? `used by ${i.usedByEmail}` : i.state}</td>
                  <td class="actions">
                    {i.state === 'open' ? (
                      <PostButton
                        action={`/admin/invites/${encodeURIComponent(i.id)}/revoke`}
                        label="Revoke"
                        danger
                      />
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
    </Layout>
  );
}
