import type { Generated, GeneratedAlways } from 'kysely';

/**
 * Every table as the migrations leave it, on both dialects (src/db/migrations.ts for SQLite,
 * src/db/migrations-postgres.ts for PostgreSQL). Times are epoch milliseconds; integers are
 * numbers on both (PostgreSQL's bigint is parsed to a number, see dialect.ts); flags are 0 or 1,
 * as the CHECK constraints hold them. Generated<> marks what the database fills in when an insert
 * leaves it out (identity ids and column defaults).
 */
export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  invites: InvitesTable;
  images: ImagesTable;
  pending_uploads: PendingUploadsTable;
  storage_deletions: StorageDeletionsTable;
  share_links: ShareLinksTable;
  share_link_images: ShareLinkImagesTable;
  changes: ChangesTable;
  outbox: OutboxTable;
  audit_log: AuditLogTable;
  app_secrets: AppSecretsTable;
  audit_purge_guard: AuditPurgeGuardTable;
  throttle_entries: ThrottleEntriesTable;
  job_leases: JobLeasesTable;
  jobs: JobsTable;
  albums: AlbumsTable;
  album_images: AlbumImagesTable;
  access_keys: AccessKeysTable;
  guest_links: GuestLinksTable;
}

type Flag = 0 | 1;
type RoleName = 'admin' | 'member' | 'viewer';

export interface UsersTable {
  id: string;
  /** Unique regardless of ASCII case (users_email_lower), and looked up by lower(email) on both dialects. */
  email: string;
  password_hash: string;
  role: RoleName;
  is_disabled: Generated<Flag>;
  created_at: number;
  last_login_at: number | null;
  quota_bytes: number | null;
  quota_images: number | null;
}

export interface SessionsTable {
  id: string;
  secret_hash: Buffer;
  user_id: string;
  created_at: number;
  refreshed_at: number;
  expires_at: number;
  /** the last request seen, to within SEEN_EVERY_MS (services/sessions.ts) */
  last_seen_at: number;
  /** the client address of that request */
  ip: string;
  /** the browser's User-Agent when it signed in, cut to USER_AGENT_MAX */
  user_agent: string;
}

export interface InvitesTable {
  id: string;
  token_hash: string;
  role: RoleName;
  created_by: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
  revoked_at: number | null;
}

export interface ImagesTable {
  id: string;
  owner_id: string;
  title: string;
  original_name: string;
  original_key: string;
  display_key: string;
  thumb_key: string;
  content_type: string;
  bytes: number;
  width: number;
  height: number;
  taken_at: number | null;
  created_at: number;
  updated_at: number;
  is_shared: Generated<Flag>;
  /** 'processing' until a worker has made its renditions (see src/jobs/renditions.ts) */
  state: Generated<ImageState>;
  /** why processing gave up, in words for the owner (state 'failed') */
  failure: string | null;
  /** the ThumbHash of the thumbnail, base64: painted while the thumbnail loads */
  placeholder: string | null;
  /** when it was taken (camera time), or its upload time when unknown: the timeline's order */
  taken_sort: GeneratedAlways<number>;
  /** the camera's settings as a small JSON object (see src/services/exif.ts), null when unknown */
  exif: string | null;
  /**
   * The upload's staging object the original is still to be copied from, as the version the
   * completion verified (staged_etag, as the bucket spells it); null once the original is in place.
   */
  staged_key: string | null;
  staged_etag: string | null;
  /** when it was moved to the trash; null while it is not there (and on insert) */
  trashed_at: Generated<number | null>;
  /** the full-size copy without location a share link's visitors download, once one asked for it */
  share_copy_key: Generated<string | null>;
  /** the ETag (bare) the bucket gave the original when the app put it in place; null before that */
  original_etag: Generated<string | null>;
  /** the guest link it came through, the guest's visit (a cookie's hash) and name; null for anyone else's */
  guest_link_id: Generated<string | null>;
  guest_visit: Generated<string | null>;
  guest_name: Generated<string | null>;
}

/**
 * Every column of images above, for queries that read whole rows: PostgreSQL's table has one more,
 * search_words (its search index, migration 22), which no row read by the app should carry. The
 * type check below fails when ImagesTable gains a column this list lacks.
 */
export const IMAGE_COLUMNS = [
  'id',
  'owner_id',
  'title',
  'original_name',
  'original_key',
  'display_key',
  'thumb_key',
  'content_type',
  'bytes',
  'width',
  'height',
  'taken_at',
  'created_at',
  'updated_at',
  'is_shared',
  'state',
  'failure',
  'placeholder',
  'taken_sort',
  'exif',
  'staged_key',
  'staged_etag',
  'trashed_at',
  'share_copy_key',
  'original_etag',
  'guest_link_id',
  'guest_visit',
  'guest_name',
] as const satisfies readonly (keyof ImagesTable)[];
type MissingImageColumn = Exclude<keyof ImagesTable, (typeof IMAGE_COLUMNS)[number]>;
const everyImageColumn: [MissingImageColumn] extends [never] ? true : MissingImageColumn = true;
void everyImageColumn;
/** The same, of images joined as i. */
export const IMAGE_COLUMNS_OF_I = IMAGE_COLUMNS.map((column) => `i.${column}` as const);

export type ImageState = 'processing' | 'ready' | 'failed';

export interface PendingUploadsTable {
  key: string;
  owner_id: string;
  original_name: string;
  replaces_image_id: string | null;
  max_bytes: Generated<number>;
  is_form: Generated<Flag>;
  /** a page's plain form was signed for this key (other tabs may post to it), even if upload.js took it over */
  is_shared: Generated<Flag>;
  created_at: number;
  expires_at: number;
  final_key: string | null;
  claimed_at: number | null;
  closed_at: number | null;
  etag: string | null;
  image_id: string | null;
  /** the bucket's multipart upload of a browser's upload in parts, until its parts are joined */
  multipart_id: Generated<string | null>;
  /** an upload through a guest link: the link, and the guest's visit (a cookie's hash) */
  guest_link_id: Generated<string | null>;
  guest_visit: Generated<string | null>;
  guest_name: Generated<string | null>;
}

interface StorageDeletionsTable {
  key: string;
  queued_at: number;
  attempts: Generated<number>;
  last_error: string | null;
}

export interface ShareLinksTable {
  id: string;
  token_hash: string;
  owner_id: string;
  password_hash: string | null;
  allow_download: Generated<Flag>;
  /** downloads are the original file (1), or a full-size copy without location (0) */
  download_original: Generated<Flag>;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  view_count: Generated<number>;
  last_viewed_at: number | null;
  /** the album the link shows (its images are then the album's, not share_link_images'); null once deleted */
  album_id: string | null;
}

interface ShareLinkImagesTable {
  link_id: string;
  image_id: string;
  position: number;
}

export interface ChangesTable {
  id: Generated<number>;
  at: number;
  actor_id: string | null;
  actor_email: string | null;
  action: string;
  image_id: string | null;
  summary: string;
}

export interface OutboxTable {
  id: Generated<number>;
  channel: 'email' | 'webhook';
  recipient: string;
  change_id: number;
  created_at: number;
  attempts: Generated<number>;
  next_attempt_at: number;
  sent_at: number | null;
  last_error: string | null;
  /** The instance sending the row now, and when its claim lapses; both null when nobody holds it. */
  claimed_by: string | null;
  claimed_until: number | null;
}

/** Append-only: triggers refuse updates, and deletes of rows not older than audit_purge_guard's cut-off. */
export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor_id: string | null;
  actor_email: string | null;
  action: string;
  target: string | null;
  detail: string | null;
  ip: string | null;
}

interface AppSecretsTable {
  name: string;
  value: Buffer;
  created_at: number;
}

/** At most one row (id 1), and only inside the audit retention job's transaction. */
interface AuditPurgeGuardTable {
  id: 1;
  cutoff: number;
}

/** Failures counted per throttle (scope) and key; see src/services/rate-limit.ts. */
interface ThrottleEntriesTable {
  scope: string;
  /** the counted key, or '#' and its SHA-256 when longer than 64 characters */
  key: string;
  /** failures counted, or still remembered by a backoff (fractional as they fade) */
  count: number;
  updated_at: number;
  last_failure_at: number;
  /** when the row blocks nothing any more and may be deleted */
  expires_at: number;
}

/** Who runs each scheduled job now; see src/services/job-lease.ts. */
interface JobLeasesTable {
  /** the job ('upload-sweep', 'audit-purge') */
  name: string;
  /** the instance that took the lease last */
  held_by: string;
  /** when the lease ends: another instance may take it from then on */
  held_until: number;
}

/** Background work not yet finished; a finished job's row goes. See src/jobs/queue.ts. */
export interface JobsTable {
  id: Generated<number>;
  kind: 'renditions';
  image_id: string;
  /** the image's owner, whose turns the job takes */
  owner_id: string;
  /** how many of the owner's jobs were waiting when it was added: jobs run in turn order */
  turn: number;
  /** the file the job is for: a job for a file since replaced has nothing left to do */
  original_key: string;
  created_at: number;
  /** when it may run (next): later after a failure */
  run_at: number;
  /** claims so far (one per run started, a crashed one included) */
  attempts: Generated<number>;
  claimed_by: string | null;
  claimed_until: number | null;
  last_error: string | null;
}

/** An owner's named set of their own images; see src/services/albums.ts. */
export interface AlbumsTable {
  id: string;
  owner_id: string;
  name: string;
  /** the cover the owner chose; null (or an image no longer in the album) means the first image */
  cover_image_id: string | null;
  created_at: number;
  updated_at: number;
}

/** Which images an album holds; an image may be in several albums. */
interface AlbumImagesTable {
  album_id: string;
  image_id: string;
  added_at: number;
}

/**
 * A link through which people without an account upload into its owner's gallery (`/u/<token>`, the
 * token stored hashed): how many files and bytes it takes in all, and what it took so far (counted
 * when each upload is accepted, in the same transaction as its image).
 */
export interface GuestLinksTable {
  id: string;
  owner_id: string;
  token_hash: string;
  label: string;
  message: string;
  max_files: number;
  max_bytes: number;
  /** a per-file size below MAX_UPLOAD_BYTES, or null for that limit */
  max_file_bytes: number | null;
  /** argon2id of the link's password, or null for none */
  password_hash: string | null;
  /** the album its uploads go to (null: none, or deleted since) */
  album_id: string | null;
  /** guests are asked for their name, kept with each upload */
  ask_name: Flag;
  /** its owner is emailed of what it brings (as admins are of every change) */
  notify_owner: Flag;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  files_accepted: Generated<number>;
  bytes_accepted: Generated<number>;
}

/**
 * People's own keys to the embedded store (migration 19). The id is the access key id; the secret
 * is sealed with a key kept in DATA_DIR, never in the database (see services/secret-box.ts).
 */
export interface AccessKeysTable {
  id: string;
  user_id: string;
  name: string;
  /** own: read and write under users/<id>/; read: only read there; bucket: everything (admins) */
  scope: 'own' | 'read' | 'bucket';
  secret_box: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}
