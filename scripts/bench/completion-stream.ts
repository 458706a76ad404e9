/**
 * The production build on a fresh data directory, fed UPLOADS photo-like 12 MP JPEGs without a
 * pause, AT_ONCE at a time, each as upload.js sends it (presign JSON, multipart POST to the
 * bucket, completion JSON). While the workers process them the queue grows, so the completions
 * of the last uploads answer behind a long queue: their times beside the first ones' show whether
 * the answer waits for processing. Before each completion the run asks /healthz how many jobs wait.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmt, percentile, type Row } from './table.js';

const UPLOADS = 200;
/** As upload.js sends a batch: two at a time. */
const AT_ONCE = 2;
/** The first uploads, answered while the queue is short, and the last, answered behind a long one. */
const FIRST = 20;
const LAST = 100;
const READY_TIMEOUT_MS = 15 * 60_000;

/** What run.ts gives this module: its ways to start, stop, sign up and read a process's memory. */
export interface StreamTools {
  serverArgs: string[];
  appEnvironment(dataDir: string): Promise<{ origin: string; env: Record<string, string> }>;
  startTimed(args: string[], env: Record<string, string>, url: string): Promise<{ child: ChildProcess }>;
  stop(child: ChildProcess): Promise<void>;
  signUp(origin: string, email: string): Promise<string>;
  untilIdle(pid: number): Promise<void>;
  memory(pid: number): { rssMB: number; peakMB: number };
}

interface Processing {
  waiting: number;
  running: number;
  failed: number;
}

/** One upload of the stream: when its completion was sent, how long it took, the queue then. */
interface Sent {
  index: number;
  presignMs: number;
  completeMs: number;
  /** jobs waiting (not yet claimed) just before the completion was sent */
  waiting: number;
}

/**
 * The three rows of the stream: completion answer times (all; first beside last), the server's
 * peak RSS beside its idle RSS, and how soon all are ready (the overall rate beside `sharpRate`,
 * sharp alone's images/s measured in the same run, or undefined when it was not).
 */
export async function completionStreamRows(
  tools: StreamTools,
  photos: Buffer[],
  sharpRate: number | undefined,
): Promise<Row[]> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 's3g-bench-stream-'));
  const { origin, env } = await tools.appEnvironment(dataDir);
  const { child } = await tools.startTimed(tools.serverArgs, env, `${origin}/healthz`);
  try {
    const pid = child.pid as number;
    const cookie = await tools.signUp(origin, 'stream@example.com');
    const json = {
      Origin: origin,
      Cookie: cookie,
      'Content-Type': 'application/json',
      Accept: 'application/json',
    };
    const postJson = async (route: string, body: object) => {
      const res = await fetch(`${origin}${route}`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(body),
      });
      const answer = await res.text();
      if (res.status !== 200) throw new Error(`${route} answered ${res.status}: ${answer}`);
      return JSON.parse(answer) as Record<string, unknown>;
    };
    const processing = async (): Promise<Processing> => {
      const res = await fetch(`${origin}/healthz`);
      return ((await res.json()) as { processing: Processing }).processing;
    };

    await tools.untilIdle(pid);
    const idle = tools.memory(pid);

    // Made once: the load generator shares the machine's cores with the server it measures.
    const blobs = photos.map((p) => new Blob([new Uint8Array(p)]));
    const sent: Sent[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        while (next < UPLOADS) {
          const index = next++;
          const photo = photos[index % photos.length] as Buffer;
          const name = `IMG_${String(index).padStart(4, '0')}.jpg`;
          const p0 = performance.now();
          const policy = (await postJson('/uploads/presign', { name, size: photo.length })) as {
            key: string;
            url: string;
            fields: Record<string, string>;
          };
          const presignMs = performance.now() - p0;
          const form = new FormData();
          for (const [k, v] of Object.entries(policy.fields)) form.append(k, v);
          form.append('Content-Type', 'image/jpeg');
          form.append('file', blobs[index % photos.length] as Blob, name);
          const stored = await fetch(policy.url, { method: 'POST', body: form });
          await stored.arrayBuffer();
          if (!stored.ok) throw new Error(`the store answered ${stored.status}`);
          const etag = stored.headers.get('ETag') ?? undefined;
          const { waiting } = await processing();
          const c0 = performance.now();
          await postJson('/uploads/complete', { key: policy.key, etag });
          sent.push({ index, presignMs, completeMs: performance.now() - c0, waiting });
        }
      }),
    );
    const lastAnswered = performance.now();
    const atLast = await processing();
    let status = atLast;
    while (status.waiting + status.running > 0) {
      if (performance.now() - lastAnswered > READY_TIMEOUT_MS)
        throw new Error('the queue did not empty in time');
      await new Promise((r) => setTimeout(r, 100));
      status = await processing();
    }
    const allReady = performance.now();
    if (status.failed > 0) throw new Error(`${status.failed} images failed to process`);
    const peak = tools.memory(pid);

    sent.sort((a, b) => a.index - b.index);
    const ms = (list: Sent[], p: number) =>
      percentile(
        list.map((s) => s.completeMs),
        p,
      );
    const first = sent.slice(0, FIRST);
    const last = sent.slice(-LAST);
    const queue = (list: Sent[]) =>
      `${Math.min(...list.map((s) => s.waiting))}–${Math.max(...list.map((s) => s.waiting))} waiting`;
    const presign = sent.map((s) => s.presignMs);
    const worstP99 = Math.max(ms(sent, 99), ms(first, 99), ms(last, 99));
    const drainS = (allReady - lastAnswered) / 1000;
    const overallRate = UPLOADS / ((allReady - t0) / 1000);
    const size = photos.reduce((sum, p) => sum + p.length, 0) / photos.length / 1024 ** 2;
    console.log(
      `stream: ${UPLOADS} uploads answered in ${fmt((lastAnswered - t0) / 1000)} s, ` +
        `${atLast.waiting} waiting and ${atLast.running} running then; all ready ${fmt(drainS)} s later`,
    );
    return [
      {
        measure: `\`/uploads/complete\` answer, 12 MP JPEG (${fmt(size)} MiB on average), ${UPLOADS} uploads ${AT_ONCE} at a time while the workers process them: p50 / p99`,
        ours: `${fmt(ms(sent, 50), 0)} / ${fmt(ms(sent, 99), 0)} ms`,
        baseline: `${fmt(percentile(presign, 50), 0)} / ${fmt(percentile(presign, 99), 0)} ms (\`/uploads/presign\`, same uploads)`,
        ratio: `${fmt(ms(sent, 99) / Math.max(percentile(presign, 99), 1))}× the p99`,
        target: 'p99 < 100 ms',
        met: ms(sent, 99) < 100,
      },
      {
        measure: `… p99 of the last ${LAST} completions (long queue) beside the first ${FIRST} (short queue)`,
        ours: `${fmt(ms(last, 99), 0)} ms (${queue(last)})`,
        baseline: `${fmt(ms(first, 99), 0)} ms (${queue(first)})`,
        ratio: `${fmt(ms(last, 99) / Math.max(ms(first, 99), 1))}×`,
        target: 'p99 < 100 ms at any queue length',
        met: worstP99 < 100,
      },
      {
        measure: `Peak RSS of the server processing that stream (VmHWM, fresh process)`,
        ours: `${fmt(peak.peakMB, 0)} MB`,
        baseline: `${fmt(idle.rssMB, 0)} MB (same process idle after start)`,
        ratio: `${fmt(peak.peakMB / idle.rssMB)}×`,
        target: '< 300 MB',
        met: peak.peakMB < 300,
      },
      {
        measure: `Last of the ${UPLOADS} uploads answered → all ${UPLOADS} ready; images/s from the first upload sent to all ready`,
        ours: `${fmt(drainS)} s (${atLast.waiting + atLast.running} jobs left then); ${fmt(overallRate, 2)} images/s`,
        baseline:
          sharpRate === undefined
            ? '—'
            : `${fmt(sharpRate, 2)} images/s (sharp alone, above; no uploads beside it)`,
        ratio: sharpRate === undefined ? '—' : `${fmt((overallRate / sharpRate) * 100, 0)}%`,
        target: '—',
      },
    ];
  } finally {
    await tools.stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
