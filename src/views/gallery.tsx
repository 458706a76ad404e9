import type { User } from '../services/users.js';
import { Layout } from './layout.js';

export function GalleryPage({ user }: { user: User }) {
  return (
    <Layout title="Your gallery" user={user}>
      <h1>Your gallery</h1>
      <section class="empty">
        <h2>No images yet</h2>
        <p>Images you upload will appear here, newest first.</p>
        <p>
          <a class="button" href="/upload" aria-disabled="true">
            Upload images
          </a>{' '}
          <span class="muted">(coming soon)</span>
        </p>
      </section>
    </Layout>
  );
}
