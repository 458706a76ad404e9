import { formatDateTime } from '../format.js';
import type { AccessKey, KeyScope, StoreEndpoint } from '../services/access-keys.js';
import type { User } from '../services/users.js';
import { ErrorMessage } from './components/messages.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

const SCOPE_LABELS: Record<KeyScope, string> = {
  own: 'Read your images, add and delete originals',
  read: 'Only read your images',
  bucket: 'Read and write the whole bucket',
};

/** The account page's keys: those made, with "last used", Revoke, and the form for a new one. */
export function AccessKeysSection({
  user,
  keys,
  store,
  error,
}: {
  user: User;
  keys: AccessKey[];
  store: StoreEndpoint | null;
  error?: string | undefined;
}) {
  return (
    <section class="card" aria-labelledby="keys-heading" id="keys">
      <h2 id="keys-heading">S3 access keys</h2>
      {store ? (
        <>
          <p class="muted">
            For the AWS CLI, boto3 and other S3 tools: a key reads only your images (
            <code>users/{user.id}/</code>) and writes only your originals (
            <code>users/{user.id}/originals/</code>), or only reads. A photo you put there appears in your
            gallery within seconds; one you delete there goes to the trash. Every request made with a key is
            in the audit log under your name.
          </p>
          {keys.length > 0 ? (
            <TableScroll label="Your S3 access keys">
              <table>
                <TableHead columns={['Name', 'Key id', 'Can', 'Made', 'Last used']} actions />
                <tbody>
                  {keys.map((k) => (
                    <tr class={k.revokedAt === null ? undefined : 'muted'}>
                      <td>{k.name}</td>
                      <td>
                        <code>{k.id}</code>
                      </td>
                      <td>{SCOPE_LABELS[k.scope]}</td>
                      <td>{formatDateTime(k.createdAt)}</td>
                      <td>{k.lastUsedAt === null ? 'never' : formatDateTime(k.lastUsedAt)}</td>
                      <td class="actions">
                        {k.revokedAt === null ? (
                          <PostButton
                            action={`/account/keys/${k.id}/revoke`}
                            label="Revoke"
                            hiddenLabel={k.name}
                            danger
                          />
                        ) : (
                          `revoked ${formatDateTime(k.revokedAt)}`
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          ) : (
            <p>You have no keys yet.</p>
          )}
          <form method="post" action="/account/keys" class="stack">
            <h3>New key</h3>
            <ErrorMessage message={error} />
            <label for="key-name">Name</label>
            <input id="key-name" name="name" required maxlength={100} placeholder="e.g. laptop" />
            <fieldset>
              <legend>It can</legend>
              {(['own', 'read', ...(user.role === 'admin' ? (['bucket'] as const) : [])] as KeyScope[]).map(
                (scope) => (
                  <label class="choice">
                    <input type="radio" name="scope" value={scope} checked={scope === 'own'} />{' '}
                    {SCOPE_LABELS[scope]}
                  </label>
                ),
              )}
            </fieldset>
            <button type="submit">Make a key</button>
          </form>
        </>
      ) : (
        <p class="muted">
          Personal keys are for the embedded store. This app keeps images in another bucket: an admin can give
          you an IAM identity limited to your images (<code>print:iam-policy --user {user.id}</code>).
        </p>
      )}
    </section>
  );
}

/** The one time a new key's secret is shown, with what a tool needs to use it. */
export function NewAccessKeyPage({
  user,
  created,
  secret,
  store,
}: {
  user: User;
  created: AccessKey;
  secret: string;
  store: StoreEndpoint;
}) {
  const where = `s3://${store.bucket}/${created.prefix}`;
  const example =
    created.scope === 'read'
      ? `aws --endpoint-url ${store.endpoint} s3 ls --recursive ${where}`
      : `aws --endpoint-url ${store.endpoint} s3 cp photo.jpg ${where}${created.scope === 'own' ? 'originals/' : `users/${user.id}/originals/`}photo.jpg`;
  const lines = [
    `export AWS_ACCESS_KEY_ID=${created.id}`,
    `export AWS_SECRET_ACCESS_KEY=${secret}`,
    `export AWS_DEFAULT_REGION=${store.region}`,
    example,
  ].join('\n');
  return (
    <Layout title="New S3 access key" user={user}>
      <h1>Your new key “{created.name}”</h1>
      <p role="status">
        <strong>Copy the secret now: it is shown only this once.</strong> If you lose it, revoke the key and
        make another.
      </p>
      <section class="card">
        <dl>
          <dt>Access key id</dt>
          <dd>
            <code id="key-id">{created.id}</code>
          </dd>
          <dt>Secret access key</dt>
          <dd>
            <code id="key-secret">{secret}</code>
          </dd>
          <dt>Endpoint</dt>
          <dd>
            <code>{store.endpoint}</code>
          </dd>
          <dt>Bucket and region</dt>
          <dd>
            <code>{store.bucket}</code>, <code>{store.region}</code> (path-style addressing)
          </dd>
          <dt>It can</dt>
          <dd>
            {SCOPE_LABELS[created.scope]}: reads <code>{where}</code>
            {created.writePrefix === null ? (
              ', writes nothing'
            ) : (
              <>
                , writes <code>{`s3://${store.bucket}/${created.writePrefix}`}</code>
              </>
            )}
          </dd>
        </dl>
        <label for="key-commands">With the AWS CLI</label>
        <textarea id="key-commands" readonly rows={5} class="code">
          {lines}
        </textarea>
        <p>
          <a class="button" href="/account#keys">
            Done
          </a>
        </p>
      </section>
    </Layout>
  );
}
