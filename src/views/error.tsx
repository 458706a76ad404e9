import type { User } from '../services/users.js';
import { Layout } from './layout.js';

const titles: Record<number, string> = {
  400: 'That did not work',
  401: 'Please log in',
  403: 'Not allowed',
  404: 'Not found',
  409: 'That could not be done',
  410: 'Gone',
  413: 'Too large',
  429: 'Too many attempts',
  500: 'Something went wrong',
  503: 'Temporarily unavailable',
};

function errorTitle(status: number): string {
  return titles[status] ?? 'Something went wrong';
}

export function ErrorPage({ status, message, user }: { status: number; message: string; user: User | null }) {
  return (
    <Layout title={errorTitle(status)} user={user}>
      <section class="card narrow">
        <h1>{errorTitle(status)}</h1>
        <p>{message}</p>
        <p>
          <a href="/">Back to the gallery</a>
        </p>
      </section>
    </Layout>
  );
}

/** What htmx swaps in when a request fails. */
export function ErrorFragment({ message }: { message: string }) {
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}
