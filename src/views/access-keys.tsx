import { formatDateTime } from '../format.js';
import type { AccessKey, KeyScope, StoreEndpoint } from '../services/access-keys.js';
import type { User } from '../services/users.js';
import { asset } from './assets.js';
import { ErrorMessage, Notice } from './components/messages.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

const SCOPE_LABELS: Record<KeyScope, string> = {
  own: 'Read your images, add and delete originals',
  read: 'Only read your images',
  bucket: 'Read and write the whole bucket',
};

/** Short words for a key's scope, for the table on a narrow screen. */
const SCOPE_SHORT: Record<KeyScope, string> = {
  own: 'your images',
  read: 'read only',
  bucket: 'whole bucket',
};

/** The account page's keys: those made, with "last used", Revoke, and the form for a new one. */
export function AccessKeysSection({
  user,
  keys,
  store,
  error,
  notice,
  chosen = 'own',
}: {
  user: User;
  keys: AccessKey[];
  store: StoreEndpoint | null;
  error?: string | undefined;
  notice?: string | undefined;
  /** the scope the refused form had chosen */
  chosen?: KeyScope;
}) {
  const folder = `users/${user.id}/`;
  return (
    <section class="card keys" aria-labelledby="keys-heading" id="keys">
      <h2 id="keys-heading">S3 access keys</h2>
      <Notice message={notice} />
      {store ? (
        <>
          <p class="muted">
            For the AWS CLI, boto3 and other S3 tools. Your folder in the bucket is <code>{folder}</code>: a
            key reads it, and adds or deletes photos in its <code>originals/</code> folder (or only reads). A
            photo you put there is in your gallery within seconds, under a name of its own; one you delete
            goes to the trash. Every request made with a key is in the audit log under your name.
          </p>
          {keys.length > 0 ? (
            <TableScroll label="Your S3 access keys">
              <table>
                <TableHead columns={['Name', 'Can', 'Last used', 'Key id']} actions />
                <tbody>
                  {keys.map((k) => (
                    <tr class={k.revokedAt === null ? undefined : 'muted'}>
                      <td>{k.name}</td>
                      <td>{SCOPE_SHORT[k.scope]}</td>
                      <td>{k.lastUsedAt === null ? 'never' : formatDateTime(k.lastUsedAt)}</td>
                      <td>
                        <code>{k.id}</code>
                      </td>
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
          {/* The fragment brings a refused form back into view: the page answering the POST scrolls to it. */}
          <form method="post" action="/account/keys#keys" class="stack">
            <h3>New key</h3>
            <ErrorMessage message={error} />
            <label for="key-name">Name</label>
            <input
              id="key-name"
              name="name"
              required
              maxlength={100}
              placeholder="e.g. laptop"
              autofocus={error ? true : undefined}
            />
            <fieldset class="choices">
              <legend>It can</legend>
              {(['own', 'read', ...(user.role === 'admin' ? (['bucket'] as const) : [])] as KeyScope[]).map(
                (scope) => (
                  <label class="check">
                    <input type="radio" name="scope" value={scope} checked={scope === chosen} />
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

/** A read-only field with a Copy button (copy.js): selectable, and copied whole, without scripts too. */
function CopyField({ id, label, value, rows }: { id: string; label: string; value: string; rows?: number }) {
  return (
    <>
      <label for={id}>{label}</label>
      <div class="copy-row">
        {rows ? (
          <textarea id={id} class="copy" readonly rows={rows} wrap="off">
            {value}
          </textarea>
        ) : (
          <input id={id} class="copy" readonly value={value} />
        )}
        <button type="button" class="secondary" data-copy={id} hidden>
          Copy
        </button>
      </div>
    </>
  );
}

/** The one time a new key's secret is shown, with what a tool needs to use it. */
export function NewAccessKeyPage({
  created,
  secret,
  store,
  user,
}: {
  user: User;
  created: AccessKey;
  secret: string;
  store: StoreEndpoint;
}) {
  const bucket = `s3://${store.bucket}`;
  const cli = `aws --endpoint-url ${store.endpoint}`;
  const originals = `${bucket}/users/${user.id}/originals/`;
  const examples =
    created.scope === 'read'
      ? [`${cli} s3 ls --recursive ${bucket}/${created.prefix}`]
      : [
          `${cli} s3 cp photo.jpg ${originals}photo.jpg`,
          `${cli} s3 ls ${originals}`,
          ...(created.scope === 'bucket' ? [`${cli} s3 ls ${bucket}/`] : []),
        ];
  const lines = [
    `export AWS_ACCESS_KEY_ID=${created.id}`,
    `export AWS_SECRET_ACCESS_KEY=${secret}`,
    `export AWS_DEFAULT_REGION=${store.region}`,
    ...examples,
  ].join('\n');
  return (
    <Layout title="New S3 access key" user={user}>
      <h1>Your new key “{created.name}”</h1>
      <p class="notice" role="status">
        <strong>Copy the secret now: it is shown only this once.</strong> If you lose it, revoke the key and
        make another.
      </p>
      <section class="card new-key stack">
        <CopyField id="key-id" label="Access key id" value={created.id} />
        <CopyField id="key-secret" label="Secret access key" value={secret} />
        <CopyField id="key-commands" label="With the AWS CLI" value={lines} rows={lines.split('\n').length} />
        <dl>
          <dt>Endpoint</dt>
          <dd>
            <code>{store.endpoint}</code> (path-style addressing)
          </dd>
          <dt>Bucket and region</dt>
          <dd>
            <code>{store.bucket}</code>, <code>{store.region}</code>
          </dd>
          <dt>It can</dt>
          <dd>
            {SCOPE_LABELS[created.scope]}: reads <code>{`${bucket}/${created.prefix}`}</code>
            {created.writePrefix === null ? (
              ', writes nothing'
            ) : (
              <>
                , writes <code>{`${bucket}/${created.writePrefix}`}</code>
              </>
            )}
            .
          </dd>
        </dl>
        <p class="muted">
          A photo put into <code>originals/</code> is moved to a name of its own as it becomes an image, so{' '}
          <code>aws s3 sync</code> into it sends it again next time: use <code>cp</code> for new photos.
          Listing the whole bucket is refused to a key limited to your folder.
        </p>
        <p>
          <a class="button" href="/account#keys">
            Done
          </a>
        </p>
      </section>
      <script type="module" src={asset('js/copy.js')} />
    </Layout>
  );
}

/** Asked before a key is revoked: what stops working, and that it cannot be undone. */
export function ConfirmRevokeKeyPage({ user, accessKey }: { user: User; accessKey: AccessKey }) {
  return (
    <Layout title={`Revoke ${accessKey.name}`} user={user}>
      <section class="card narrow">
        <h1>Revoke the key “{accessKey.name}”?</h1>
        <p>
          Every tool that signs with <code>{accessKey.id}</code> is refused from then on. A revoked key cannot
          be turned back on: make a new one if you need it again.
        </p>
        <form method="post" action={`/account/keys/${accessKey.id}/revoke`} class="row">
          <input type="hidden" name="confirm" value="yes" />
          <button type="submit" class="danger">
            Revoke
          </button>
          <a href="/account#keys">Cancel</a>
        </form>
      </section>
    </Layout>
  );
}
