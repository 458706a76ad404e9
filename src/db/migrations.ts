/**
 * Numbered migrations; PRAGMA user_version records how many have run.
 * Never edit one that has shipped: add the next.
 */
export const migrations: readonly string[] = [
  // 1: accounts, sessions, invites
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    is_disabled INTEGER NOT NULL DEFAULT 0 CHECK (is_disabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
  ) STRICT;

  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    refreshed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX sessions_user_id ON sessions (user_id);

  CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at INTEGER
  ) STRICT;
  `,
  // 2: images, uploads waiting for completion, and deletes to retry
  `
  CREATE TABLE images (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    original_name TEXT NOT NULL,
    original_key TEXT NOT NULL UNIQUE,
    display_key TEXT NOT NULL,
    thumb_key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    taken_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX images_owner_created ON images (owner_id, created_at DESC, id DESC);

  CREATE TABLE pending_uploads (
    key TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    original_name TEXT NOT NULL,
    replaces_image_id TEXT REFERENCES images (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX pending_uploads_owner ON pending_uploads (owner_id);
  CREATE INDEX pending_uploads_expires ON pending_uploads (expires_at);

  CREATE TABLE storage_deletions (
    key TEXT PRIMARY KEY,
    queued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
  ) STRICT;
  `,
  // 3: sharing, quotas, notifications and the audit log
  `
  ALTER TABLE images ADD COLUMN is_shared INTEGER NOT NULL DEFAULT 0 CHECK (is_shared IN (0, 1));
  CREATE INDEX images_shared_created ON images (created_at DESC, id DESC) WHERE is_shared = 1;

  ALTER TABLE users ADD COLUMN quota_bytes INTEGER;
  ALTER TABLE users ADD COLUMN quota_images INTEGER;

  CREATE TABLE share_links (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT,
    allow_download INTEGER NOT NULL DEFAULT 0 CHECK (allow_download IN (0, 1)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    view_count INTEGER NOT NULL DEFAULT 0,
    last_viewed_at INTEGER
  ) STRICT;
  CREATE INDEX share_links_owner ON share_links (owner_id, created_at DESC);

  CREATE TABLE share_link_images (
    link_id TEXT NOT NULL REFERENCES share_links (id) ON DELETE CASCADE,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (link_id, image_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX share_link_images_image ON share_link_images (image_id);

  -- What admins see in the app; rows outlive the users and images they mention.
  CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor_id TEXT,
    actor_email TEXT,
    action TEXT NOT NULL,
    image_id TEXT,
    summary TEXT NOT NULL
  ) STRICT;

  -- Deliveries still to make; written in the transaction of the change they announce.
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient TEXT NOT NULL,
    change_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at INTEGER,
    last_error TEXT
  ) STRICT;
  CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
  CREATE INDEX outbox_recipient_sent ON outbox (channel, recipient, sent_at);

  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor_id TEXT,
    actor_email TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    ip TEXT
  ) STRICT;
  CREATE INDEX audit_log_at ON audit_log (at);
  CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
  CREATE INDEX audit_log_action ON audit_log (action, id);
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  `,
  // 4: a pending upload outlives its completion until its policy expires, so a replay of the policy
  // is swept; it records the policy's size ceiling (reserved against the byte quota while it is
  // unfinished), whether it is an upload page's own form (reused by the next visit), the fresh key a
  // completion copies to, the ETag it copied, and the image it made. No foreign key to the replaced
  // image: deleting that image closes the row instead of removing it, so what its policy may still
  // write is swept.
  `
  CREATE TABLE pending_uploads_v4 (
    key TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    original_name TEXT NOT NULL,
    replaces_image_id TEXT,
    max_bytes INTEGER NOT NULL DEFAULT 0 CHECK (max_bytes >= 0),
    is_form INTEGER NOT NULL DEFAULT 0 CHECK (is_form IN (0, 1)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    final_key TEXT UNIQUE,
    claimed_at INTEGER,
    closed_at INTEGER,
    etag TEXT,
    image_id TEXT
  ) STRICT;
  INSERT INTO pending_uploads_v4 (key, owner_id, original_name, replaces_image_id, created_at, expires_at)
    SELECT key, owner_id, original_name, replaces_image_id, created_at, expires_at FROM pending_uploads;
  DROP TABLE pending_uploads;
  ALTER TABLE pending_uploads_v4 RENAME TO pending_uploads;
  CREATE INDEX pending_uploads_owner ON pending_uploads (owner_id, closed_at);
  CREATE INDEX pending_uploads_expires ON pending_uploads (expires_at);
  CREATE INDEX pending_uploads_replaces ON pending_uploads (replaces_image_id) WHERE replaces_image_id IS NOT NULL;
  `,
  // 5: secrets the app generates itself, and an audit log that only its retention job may trim
  `
  CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;

  -- Holds the cut-off only inside the retention job's transaction; deletes need a row in it.
  CREATE TABLE audit_purge_guard (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff INTEGER NOT NULL
  ) STRICT;
  DROP TRIGGER audit_log_no_delete;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN NOT EXISTS (SELECT 1 FROM audit_purge_guard WHERE id = 1 AND OLD.at < cutoff)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  `,
  // 6: login and share throttles, so every instance counts the same attempts and a restart forgets
  // none. A scope names the throttle ('login.account', 'share.link', …); expires_at is when a row
  // blocks nothing any more (a window's end, or when a backoff's failures have faded).
  `
  CREATE TABLE throttle_entries (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    count REAL NOT NULL CHECK (count >= 0),
    updated_at INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX throttle_entries_expires ON throttle_entries (scope, expires_at);
  `,
  // 7: outbox rows are claimed before they are sent, so two instances never send one twice.
  // claimed_by is the claiming process's random id, claimed_until when its lease ends (a crashed
  // worker's claims lapse then, and another instance takes them).
  `
  ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
  ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
  `,
  // 8: scheduled jobs (the upload sweep, the audit purge) run on one instance at a time. A row per
  // job: held_by is the instance running it, held_until when its lease ends (a crashed holder's
  // lease lapses then; one that finishes sets it to the time it finished).
  `
  CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    held_by TEXT NOT NULL,
    held_until INTEGER NOT NULL
  ) STRICT;
  `,
  // 9: an email is looked up by lower(email) on both dialects, which folds ASCII letters only (the
  // app's sign-up takes ASCII addresses). PostgreSQL's case-insensitive ICU collation also matched
  // fullwidth letters and ignored invisible characters, so one account had endless spellings.
  `
  CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
  `,
  // 10: renditions are made in the background. An image is 'processing' from its completion until a
  // worker has made its thumbnail and display copy ('ready'), or gave up ('failed', with the reason
  // people see); placeholder is its ThumbHash (base64), painted before the thumbnail arrives.
  // jobs holds work not yet finished (a finished job's row goes): run_at is when it may run next
  // (later after a failure, backing off), claimed_by/claimed_until the worker holding it and when
  // that claim lapses (a crashed worker's job is taken again then); attempts counts its claims.
  // turn is how many of its owner's jobs were queued before it: jobs run in turn order, so each
  // person's first job goes before anyone's second (one person's 500 uploads hold no one else up).
  `
  ALTER TABLE images ADD COLUMN state TEXT NOT NULL DEFAULT 'ready'
    CHECK (state IN ('processing', 'ready', 'failed'));
  ALTER TABLE images ADD COLUMN failure TEXT;
  ALTER TABLE images ADD COLUMN placeholder TEXT;
  CREATE INDEX images_unready ON images (state) WHERE state <> 'ready';

  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('renditions')),
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    turn INTEGER NOT NULL,
    original_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until INTEGER,
    last_error TEXT
  ) STRICT;
  CREATE INDEX jobs_turn ON jobs (turn, id);
  CREATE INDEX jobs_image ON jobs (image_id);
  CREATE INDEX jobs_owner ON jobs (owner_id);
  `,
  // 11: albums. An album is its owner's named set of their own images (an image may be in several);
  // deleting an album leaves its images, deleting an image takes it out of every album. cover_image_id
  // is the cover the owner chose (null: the album's first image). A share link may show an album
  // instead of a list of images (album_id): it shows what the album holds when it is opened, and
  // shows nothing once the album is deleted.
  `
  CREATE TABLE albums (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    cover_image_id TEXT REFERENCES images (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX albums_owner ON albums (owner_id, created_at DESC);
  CREATE INDEX albums_cover ON albums (cover_image_id) WHERE cover_image_id IS NOT NULL;

  CREATE TABLE album_images (
    album_id TEXT NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (album_id, image_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX album_images_image ON album_images (image_id);

  ALTER TABLE share_links ADD COLUMN album_id TEXT REFERENCES albums (id) ON DELETE SET NULL;
  CREATE INDEX share_links_album ON share_links (album_id) WHERE album_id IS NOT NULL;
  `,
  // 12: the timeline and search. taken_sort is when the picture was taken (EXIF's camera time), or
  // its upload time when unknown: generated, so every write keeps it right, and indexed for keyset
  // pages in that order as created_at is. exif is a small JSON object of the camera's settings
  // (camera, lens, exposure...), read again through a schema. images_search is a full-text index
  // of titles and original names (FTS5 over the images rows, kept by the triggers below), with
  // prefix indexes so "bea" finds "Holiday beach.jpg" without scanning every word.
  `
  ALTER TABLE images ADD COLUMN taken_sort INTEGER GENERATED ALWAYS AS (coalesce(taken_at, created_at)) VIRTUAL;
  ALTER TABLE images ADD COLUMN exif TEXT;
  CREATE INDEX images_owner_taken ON images (owner_id, taken_sort DESC, id DESC);
  CREATE INDEX images_shared_taken ON images (taken_sort DESC, id DESC) WHERE is_shared = 1;

  CREATE VIRTUAL TABLE images_search USING fts5 (
    title, original_name,
    content = 'images', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 0', prefix = '1 2 3'
  );
  INSERT INTO images_search (images_search) VALUES ('rebuild');
  CREATE TRIGGER images_search_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_search (rowid, title, original_name) VALUES (new.rowid, new.title, new.original_name);
  END;
  CREATE TRIGGER images_search_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_search (images_search, rowid, title, original_name)
      VALUES ('delete', old.rowid, old.title, old.original_name);
  END;
  CREATE TRIGGER images_search_update AFTER UPDATE OF title, original_name ON images BEGIN
    INSERT INTO images_search (images_search, rowid, title, original_name)
      VALUES ('delete', old.rowid, old.title, old.original_name);
    INSERT INTO images_search (rowid, title, original_name) VALUES (new.rowid, new.title, new.original_name);
  END;
  `,
  // 13: a completion may answer before the original is in place. staged_key is then the upload's
  // staging object the original is still to be copied from, as the version the completion verified
  // (staged_etag); null once the original is in place (the copy starts after the answer, and the
  // renditions job makes it first if it was not made). Nothing deletes a staging object an image
  // still names. is_shared marks a pending upload whose key a page's plain form was signed for:
  // other tabs may post to it, so its completion copies before it answers (rows already there:
  // all, as before).
  `
  ALTER TABLE images ADD COLUMN staged_key TEXT;
  ALTER TABLE images ADD COLUMN staged_etag TEXT;
  CREATE INDEX images_staged ON images (staged_key) WHERE staged_key IS NOT NULL;
  ALTER TABLE pending_uploads ADD COLUMN is_shared INTEGER NOT NULL DEFAULT 0 CHECK (is_shared IN (0, 1));
  UPDATE pending_uploads SET is_shared = 1;
  `,
  // 14: what the account page lists of each signed-in browser: when it was last seen (written at
  // most every few minutes, not on every request), from which address, and its user agent.
  `
  ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
  ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
  UPDATE sessions SET last_seen_at = refreshed_at;
  `,
  // 15: the trash. trashed_at is when an image was moved there (null: it is not): galleries, albums,
  // search and share links leave it out, its objects stay until it is restored, deleted for good,
  // or purged TRASH_DAYS later (the partial index finds those due, and a person's trash).
  `
  ALTER TABLE images ADD COLUMN trashed_at INTEGER;
  CREATE INDEX images_trashed ON images (owner_id, trashed_at DESC, id DESC) WHERE trashed_at IS NOT NULL;
  CREATE INDEX images_trash_due ON images (trashed_at) WHERE trashed_at IS NOT NULL;
  `,
  // 16: what a share link's downloads are. download_original: the original file (camera data and
  // location included); otherwise a full-size copy without them, made on the first download and
  // kept at share_copy_key (null until then; a replacement or a delete removes it). Links made
  // before offered the original: they still do.
  `
  ALTER TABLE share_links ADD COLUMN download_original INTEGER NOT NULL DEFAULT 0 CHECK (download_original IN (0, 1));
  UPDATE share_links SET download_original = allow_download;
  ALTER TABLE images ADD COLUMN share_copy_key TEXT;
  `,
  // 17: the ETag the bucket gave the image's original when the app put it in place, so a file
  // overwritten there outside the app is told from the app's own (null for images stored before).
  `
  ALTER TABLE images ADD COLUMN original_etag TEXT;
  `,
  // 18: on PostgreSQL, the search index takes each new image at once (see migrations-postgres.ts);
  // SQLite's full-text index always did.
  `
  SELECT 1;
  `,
  // 19: people's own keys to the embedded store (see AccessKeysTable in schema.ts).
  `
  CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('own', 'read', 'bucket')),
    secret_box TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX access_keys_user ON access_keys (user_id, created_at);
  `,
  // 20: a browser's upload in parts (upload.js, for large files): the bucket's multipart upload id,
  // null for a POST policy's upload and once the parts are joined.
  `
  ALTER TABLE pending_uploads ADD COLUMN multipart_id TEXT;
  `,
  // 21: guest upload links (see GuestLinksTable in schema.ts): what each accepted so far is counted
  // on its row, and an upload through one (its pending row, then its image) names it and the visit
  // (a browser's cookie) it came from.
  `
  CREATE TABLE guest_links (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    message TEXT NOT NULL,
    max_files INTEGER NOT NULL CHECK (max_files > 0),
    max_bytes INTEGER NOT NULL CHECK (max_bytes > 0),
    max_file_bytes INTEGER CHECK (max_file_bytes > 0),
    password_hash TEXT,
    album_id TEXT REFERENCES albums (id) ON DELETE SET NULL,
    ask_name INTEGER NOT NULL DEFAULT 0 CHECK (ask_name IN (0, 1)),
    notify_owner INTEGER NOT NULL DEFAULT 1 CHECK (notify_owner IN (0, 1)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    files_accepted INTEGER NOT NULL DEFAULT 0,
    bytes_accepted INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE INDEX guest_links_owner ON guest_links (owner_id, created_at);
  ALTER TABLE pending_uploads ADD COLUMN guest_link_id TEXT;
  ALTER TABLE pending_uploads ADD COLUMN guest_visit TEXT;
  ALTER TABLE pending_uploads ADD COLUMN guest_name TEXT;
  CREATE INDEX pending_uploads_guest ON pending_uploads (guest_link_id) WHERE guest_link_id IS NOT NULL;
  ALTER TABLE images ADD COLUMN guest_link_id TEXT;
  ALTER TABLE images ADD COLUMN guest_visit TEXT;
  ALTER TABLE images ADD COLUMN guest_name TEXT;
  CREATE INDEX images_guest ON images (guest_link_id, guest_visit) WHERE guest_link_id IS NOT NULL;
  `,
  // 22: PostgreSQL stores each image's search words (see migrations-postgres.ts); images_search
  // already holds them here. Nothing to change: the number keeps the two lists in step.
  `
  SELECT 1;
  `,
];
