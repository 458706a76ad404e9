import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Config } from '../config.js';
import type { AppDb } from '../db/database.js';
import { createOriginalStore } from '../jobs/original-store.js';
import { createJobQueue } from '../jobs/queue.js';
import { createRenditionsHandler } from '../jobs/renditions.js';
import type { Storage } from '../storage/storage.js';
import { createAccessKeys, type StoreEndpoint } from './access-keys.js';
import { createAlbums } from './albums.js';
import { createAudit } from './audit.js';
import { createBucketEvents } from './bucket-events.js';
import type { Clock } from './clock.js';
import { createDeviceTokens } from './device-tokens.js';
import { createGuestLinks } from './guest-links.js';
import { createImages } from './images.js';
import { createInvites } from './invites.js';
import { createJobLeases } from './job-lease.js';
import { createLogin, LOGIN_LIMITS, type LoginLimits } from './login.js';
import { createNotifications } from './notifications.js';
import { createOutsideChanges } from './outside-changes.js';
import { createOutsideImports } from './outside-imports.js';
import { createPendingUploads } from './pending-uploads.js';
import { createPeople } from './people.js';
import { createReconcile } from './reconcile.js';
import { createSecretBox } from './secret-box.js';
import { createSessions } from './sessions.js';
import { createShareCopies } from './share-copies.js';
import { createShares } from './shares.js';
import { createTrashPurge } from './trash-purge.js';
import { createUploadParts } from './upload-parts.js';
import { createUploadSweeper } from './upload-sweeper.js';
import { createUploads } from './uploads.js';
import { createUsers } from './users.js';

const STORAGE_HEALTH_TTL_MS = 10_000;

export interface ServiceDeps {
  database: AppDb;
  storage: Storage;
  clock: Clock;
  config: Pick<
    Config,
    | 'signup'
    | 'maxUploadBytes'
    | 'appOrigin'
    | 'notify'
    | 'signupsPerIpPerHour'
    | 'processing'
    | 'accept'
    | 'bucketEvents'
    | 'guestLinks'
  >;
  /** Tests may lower some limits to reach them quickly. */
  loginLimits?: Partial<LoginLimits>;
  /** How /healthz tells the bucket answers; defaults to storage.ping() (a one-key list of users/). */
  probeStorage?: () => Promise<void>;
  /**
   * The embedded store as people's tools reach it, when it is the bucket: people may then make
   * their own keys to it (the store asks accessKeys.grantFor), sealed with DATA_DIR's key file.
   */
  embeddedStore?: StoreEndpoint & { keyFile: string };
  /** How SNS certificates and subscription URLs are fetched (tests serve their own). */
  bucketEventsFetch?: (url: string) => Promise<string>;
}

export function createServices({
  database,
  storage,
  clock,
  config,
  loginLimits,
  probeStorage,
  embeddedStore,
  bucketEventsFetch,
}: ServiceDeps) {
  // This process among the instances sharing the database: scheduled jobs and outbox deliveries are
  // claimed in its name.
  const instanceId = randomUUID();
  const leases = createJobLeases({ database, clock, instanceId });
  const audit = createAudit({ database, clock, leases });
  const users = createUsers({ database, clock, signup: config.signup, audit });
  const sessions = createSessions({ database, clock });
  const devices = createDeviceTokens({ database, clock });
  const notifications = createNotifications({
    database,
    clock,
    config: config.notify,
    appOrigin: config.appOrigin,
    instanceId,
  });
  const pending = createPendingUploads({ database });
  const images = createImages({
    database,
    storage,
    clock,
    audit,
    notifications,
    pending,
    // The store is made from the images service: asked for only once both exist.
    originalSettled: (imageId) => originals.settled(imageId),
  });
  const originals = createOriginalStore({ database, storage, images });
  const jobs = createJobQueue({
    database,
    clock,
    instanceId,
    handler: createRenditionsHandler({ database, storage, images, originals }),
    workers: config.processing.workers,
    leaseMs: config.processing.leaseMs,
  });
  const uploads = createUploads({
    database,
    storage,
    audit,
    images,
    users,
    notifications,
    pending,
    clock,
    maxUploadBytes: config.maxUploadBytes,
    accept: config.accept,
    appOrigin: config.appOrigin,
    onJobAdded: jobs.notify,
    originals,
    guestLinks: config.guestLinks,
  });
  const copies = createShareCopies({ database, storage, images });
  const shares = createShares({ database, storage, audit, images, devices, copies, clock });
  const uploadSweeper = createUploadSweeper({ storage, pending, uploads, users, images, clock, leases });
  const accessKeys = createAccessKeys({
    database,
    clock,
    audit,
    // Without the embedded store no key is ever made, and no box opened: its file is never created.
    box: createSecretBox(embeddedStore?.keyFile ?? '/nonexistent/access-keys.key'),
    store: embeddedStore
      ? { endpoint: embeddedStore.endpoint, bucket: embeddedStore.bucket, region: embeddedStore.region }
      : null,
    maxObjectBytes: config.maxUploadBytes,
  });
  const imports = createOutsideImports({ storage, uploads, users, pending, clock });
  const outsideChanges = createOutsideChanges({ database, storage, images, imports, uploads, pending });
  let storageHealth: { at: number; ok: Promise<boolean> } | undefined;
  function checkStorage(): Promise<boolean> {
    if (!storageHealth || clock() - storageHealth.at >= STORAGE_HEALTH_TTL_MS) {
      const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, 2000, false).unref());
      const ping = (probeStorage ?? storage.ping)().then(
        () => true,
        () => false,
      );
      storageHealth = { at: clock(), ok: Promise.race([ping, timeout]) };
    }
    return storageHealth.ok;
  }

  return {
    accessKeys,
    database,
    clock,
    storage,
    users,
    sessions,
    images,
    uploads,
    uploadParts: createUploadParts({ storage, pending, uploads, clock, accept: config.accept }),
    guestLinks: createGuestLinks({
      database,
      audit,
      users,
      images,
      uploads,
      clock,
      devices,
      maxUploadBytes: config.maxUploadBytes,
      enabled: config.guestLinks,
    }),
    jobs,
    audit,
    notifications,
    people: createPeople({ database, storage, audit, users, images }),
    shares,
    albums: createAlbums({ database, audit, images, shares, clock }),
    uploadSweeper,
    trashPurge: createTrashPurge({ images, leases }),
    reconcile: createReconcile({
      database,
      storage,
      users,
      uploads,
      images,
      clock,
      pending,
      sweeper: uploadSweeper,
      leases,
      imports,
    }),
    outsideChanges,
    bucketEvents: createBucketEvents({
      config: { bucket: storage.bucket, ...config.bucketEvents },
      notice: outsideChanges.notice,
      ...(bucketEventsFetch ? { fetchText: bucketEventsFetch } : {}),
    }),
    invites: createInvites({ database, clock, audit }),
    login: createLogin({
      database,
      audit,
      users,
      sessions,
      devices,
      clock,
      limits: { ...LOGIN_LIMITS, signupsPerIpPerHour: config.signupsPerIpPerHour, ...loginLimits },
    }),
    /**
     * For /healthz and the admin console: renditions jobs waiting and running (everywhere), images
     * still processing, failed ones, and how long the oldest job has waited.
     */
    async processingStatus() {
      const [queue, unready] = await Promise.all([jobs.counts(), images.unreadyCounts()]);
      return {
        waiting: queue.waiting,
        running: queue.running,
        failed: unready.failed,
        oldestSeconds:
          queue.oldestCreatedAt === null
            ? 0
            : Math.max(0, Math.round((clock() - queue.oldestCreatedAt) / 1000)),
      };
    },
    /** For /healthz: which database the metadata lives in. */
    databaseKind: database.kind,
    /** For /healthz: a real query, so a broken or locked database shows. */
    async checkDatabase(): Promise<boolean> {
      const { rows } = await sql<{ ok: number }>`SELECT 1 AS ok`.execute(database.q);
      return Number(rows[0]?.ok) === 1;
    },
    /** For /healthz: whether the bucket answered lately. Cached, so probes cannot hammer the bucket. */
    checkStorage,
  };
}

export type Services = ReturnType<typeof createServices>;
