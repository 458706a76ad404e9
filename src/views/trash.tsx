import { countOf, formatDateTime } from '../format.js';
import type { TrashItem } from '../services/images.js';
import type { User } from '../services/users.js';
import { PageHeading } from './components/page-heading.js';
import { PostButton } from './components/post-button.js';
import { ThumbLink } from './gallery.js';
import { Layout } from './layout.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Where an owner's trash is: your own, or (for admins) someone else's. */
export const trashHref = (user: User, ownerId: string) =>
  ownerId === user.id ? '/trash' : `/users/${ownerId}/trash`;

/** "12 days left", counted from when it went to the trash. */
function timeLeft(trashedAt: number, trashDays: number, now: number): string {
  const days = Math.ceil((trashedAt + trashDays * DAY_MS - now) / DAY_MS);
  return days <= 0 ? 'Deleted for good soon' : `${countOf(days, 'day')} left`;
}

export interface TrashPageProps {
  user: User;
  owner: User;
  items: TrashItem[];
  /** how many images are in the trash in all (items holds the latest of them) */
  total: number;
  trashDays: number;
  now: number;
  notice?: string | undefined;
}

/** An owner's trash: what Delete moved there, restorable until TRASH_DAYS have passed. */
export function TrashPage({ user, owner, items, total, trashDays, now, notice }: TrashPageProps) {
  const isOwn = user.id === owner.id;
  const back = trashHref(user, owner.id);
  const title = isOwn ? 'Trash' : `Trash of ${owner.email}`;
  return (
    <Layout title={title} user={user}>
      <PageHeading
        back={
          isOwn
            ? { href: '/', label: 'Your gallery' }
            : { href: `/users/${owner.id}`, label: 'Their gallery' }
        }
        title={title}
        notice={notice}
      />
      <p class="muted">
        Deleted images wait here for {countOf(trashDays, 'day')}, then are deleted for good. Until then they
        still count towards {isOwn ? 'your' : 'the'} storage quota, and only {isOwn ? 'you' : 'their owner'}{' '}
        and admins can see them.
      </p>
      {items.length === 0 ? (
        <section class="empty">
          <h2>The trash is empty</h2>
          <p>Images you delete wait here, so a mistake can be undone.</p>
        </section>
      ) : (
        <>
          <div class="row bulk">
            <form id="trash-selection" method="post" action="/trash/restore" class="row">
              <input type="hidden" name="back" value={back} />
              <button type="submit">Restore selected</button>
              <button type="submit" formaction="/trash/delete" class="danger">
                Delete selected forever
              </button>
            </form>
            <PostButton action="/trash/empty" label="Empty trash" danger fields={{ owner: owner.id }} />
          </div>
          {total > items.length ? (
            <p class="muted">
              The {items.length} latest of {countOf(total, 'image')} here; the others show once these are
              gone.
            </p>
          ) : null}
          <ul class="grid trash-grid">
            {items.map(({ card, trashedAt }) => (
              <li class="thumb" id={`image-${card.id}`}>
                <ThumbLink card={card} context={{ order: 'uploaded' }} />
                <div class="thumb-bar">
                  <input
                    type="checkbox"
                    name="ids"
                    value={card.id}
                    form="trash-selection"
                    id={`select-${card.id}`}
                  />
                  <label for={`select-${card.id}`} class="thumb-title" title={card.title}>
                    <span class="visually-hidden">Select </span>
                    {card.title}
                  </label>
                </div>
                <p class="thumb-note muted" title={`Moved to the trash ${formatDateTime(trashedAt)}`}>
                  {timeLeft(trashedAt, trashDays, now)}
                </p>
                <div class="row thumb-actions">
                  <PostButton
                    action="/trash/restore"
                    label="Restore"
                    fields={{ ids: card.id, back }}
                    hiddenLabel={card.title}
                  />
                  <PostButton
                    action="/trash/delete"
                    label="Delete forever"
                    danger
                    fields={{ ids: card.id, back }}
                    hiddenLabel={card.title}
                  />
                </div>
              </li>
            ))}
          </ul>
        </>
      )}
    </Layout>
  );
}

/** Deleting from the trash (or emptying it) asks once more: this one cannot be undone. */
export function ConfirmDeleteForeverPage({
  user,
  titles,
  ids,
  ownerId,
  back,
  count = titles.length,
}: {
  user: User;
  /** what goes: the images chosen, or (the latest of) every image in the trash */
  titles: string[];
  /** how many go, when titles holds only the latest of them */
  count?: number;
  /** the images chosen; none: the whole trash of `ownerId` */
  ids: string[];
  ownerId: string;
  back: string;
}) {
  const isEmpty = ids.length === 0;
  const heading = isEmpty
    ? `Empty the trash (${countOf(count, 'image')})?`
    : titles.length === 1
      ? `Delete “${titles[0]}” forever?`
      : `Delete ${countOf(count, 'image')} forever?`;
  return (
    <Layout title={isEmpty ? 'Empty the trash' : 'Delete forever'} user={user}>
      <section class="card narrow">
        <h1>{heading}</h1>
        {titles.length > 1 ? (
          <ul>
            {titles.slice(0, 50).map((title) => (
              <li>{title}</li>
            ))}
            {count > 50 ? <li>and {count - 50} more</li> : null}
          </ul>
        ) : null}
        <p>The files are deleted from the bucket for good. This cannot be undone.</p>
        <form method="post" action={isEmpty ? '/trash/empty' : '/trash/delete'} class="row">
          {ids.map((id) => (
            <input type="hidden" name="ids" value={id} />
          ))}
          <input type="hidden" name="owner" value={ownerId} />
          <input type="hidden" name="back" value={back} />
          <input type="hidden" name="confirm" value="yes" />
          <button type="submit" class="danger">
            {isEmpty ? 'Empty the trash' : 'Delete forever'}
          </button>
          <a href={back}>Cancel</a>
        </form>
      </section>
    </Layout>
  );
}
