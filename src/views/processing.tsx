import { countOf, formatDateTime } from '../format.js';
import type { Image } from '../services/images.js';
import type { User } from '../services/users.js';
import { AdminNav } from './admin-nav.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

interface ProcessingStatus {
  waiting: number;
  running: number;
  failed: number;
  oldestSeconds: number;
}

export interface ProcessingPageProps {
  user: User;
  status: ProcessingStatus;
  /** the latest failed images, and their owners' addresses */
  failed: { image: Image; ownerEmail: string }[];
}

/** The renditions queue, everyone's: what waits, what runs, and what failed (with a retry each). */
export function ProcessingPage({ user, status, failed }: ProcessingPageProps) {
  return (
    <Layout title="Processing" user={user}>
      <h1>Admin</h1>
      <AdminNav current="/admin/processing" />
      <section class="card" aria-labelledby="queue-heading">
        <h2 id="queue-heading">Processing queue</h2>
        <p>
          New uploads get their thumbnail and display copy in the background.{' '}
          {countOf(status.waiting, 'image')} waiting, {status.running} being processed now
          {status.waiting + status.running > 0 ? `; the oldest was queued ${status.oldestSeconds} s ago` : ''}
          .
        </p>
      </section>
      <TableScroll label="Images in processing">
        <table>
          <caption>
            {status.failed === 0
              ? 'No image failed processing.'
              : `${countOf(status.failed, 'image')} could not be processed${failed.length < status.failed ? ` (the latest ${failed.length} shown)` : ''}`}
          </caption>
          {failed.length > 0 ? (
            <>
              <TableHead columns={['Image', 'Owner', 'Reason', 'Uploaded']} actions />
              <tbody>
                {failed.map(({ image, ownerEmail }) => (
                  <tr>
                    <td>
                      <a href={`/images/${image.id}`}>{image.title}</a>
                    </td>
                    <td>{ownerEmail}</td>
                    <td>{image.failure}</td>
                    <td>{formatDateTime(image.createdAt)}</td>
                    <td class="actions">
                      <PostButton action={`/images/${image.id}/retry`} label="Try again" />
                    </td>
                  </tr>
                ))}
              </tbody>
            </>
          ) : null}
        </table>
      </TableScroll>
    </Layout>
  );
}
