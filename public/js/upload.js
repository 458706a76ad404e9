// Enhances the plain upload form: several files, drag and drop, a row per file with a preview and
// a progress bar, cancel and retry, and a summary. Each file gets its own policy from
// POST /uploads/presign, goes straight to the bucket by XHR, and is confirmed with
// POST /uploads/complete. A file larger than a part (the form's data-part-bytes) goes up in parts
// instead: POST /uploads/parts/start, each part PUT to its own signed URL (three at once, each tried
// again after a dropped connection), then POST /uploads/parts/finish. Without this script the form
// still works (one file, a plain POST).
// What the page states (accepted types, size limit) is read from the page, not repeated here.
//
// One way in: choosing or dropping files queues them (and empties the file input), and the queue
// starts by itself. The Upload button only opens the file chooser (it reads "Upload more" once files
// are in), and is disabled while files are on their way, so no file is ever sent twice.
import { formatBytes } from './format.js';

(() => {
  const form = document.getElementById('upload-form');
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  const input = form.querySelector('input[type=file]');
  const button = form.querySelector('button[type=submit]');
  const list = document.getElementById('upload-list');
  const summary = document.getElementById('upload-summary');
  const dropzone = document.getElementById('dropzone');
  const maxBytes = Number(form.dataset.maxBytes);
  /** A file larger than this goes up in parts (0: never). */
  const partBytes = Number(form.dataset.partBytes) || 0;
  /** Where the app signs, completes and gives up this page's uploads (a guest link's page has its own). */
  const endpoint = form.dataset.uploads || '/uploads';
  /** Where the summary leads once files are in, and in what words (none: no such link). */
  const doneHref = form.dataset.doneHref ?? '/';
  const doneLabel = form.dataset.doneLabel || 'View in gallery';
  const replaces = form.dataset.replaces || '';
  const accepted = input.accept.split(',').filter(Boolean);
  /** ACCEPT=any: any file is kept (the page's input names no types); images get their copies. */
  const anyFile = !input.accept;
  const typeNames = form.dataset.typeNames;
  /** Files sent at once: enough to fill the pipe without starving the page. */
  const PARALLEL = 2;
  /** A click this soon after a row's Retry became Cancel is the second of a double click. */
  const ACTION_GUARD_MS = 400;
  /** How long a request to the app may take before the file is marked failed (Retry then asks again). */
  const APP_TIMEOUT_MS = 60_000;
  /** Parts of one file sent at once, and how often one part is tried before the file is marked failed. */
  const PARTS_PARALLEL = 3;
  const PART_ATTEMPTS = 5;
  // The page's own upload reserved room in the quota: the first file re-signs it instead of a new
  // one, alone (until it is done, the room it reserved is not free for the others).
  let formKey = form.querySelector('input[name="key"]')?.value || '';
  let soloRunning = false;

  if (!replaces) {
    input.multiple = true;
    form.querySelector('label[for="file"]').textContent = anyFile ? 'Choose files' : 'Choose images';
  }
  form.noValidate = true; // the script checks each file itself, and says why
  form.querySelector('.drop-hint').hidden = false;

  /** Every file chosen on this page, in the order chosen; `queue` holds those waiting to start. */
  const items = [];
  const queue = [];
  const isActive = (item) => ['waiting', 'sending', 'finishing'].includes(item.state);

  // A browser that does not know a type (HEIC, on most desktops) gives none: the extension names it.
  const EXTENSION_TYPES = { heic: 'image/heic', heif: 'image/heif' };
  const typeOf = (file) => file.type || EXTENSION_TYPES[file.name.split('.').pop().toLowerCase()] || '';
  /** Types every browser we support can show, so the row gets a preview. */
  const PREVIEWABLE = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif'];

  function refusal(file) {
    if (!anyFile && !accepted.includes(typeOf(file))) return `Not a ${typeNames} image.`;
    if (file.size === 0) return 'The file is empty.';
    if (file.size > maxBytes) return `Larger than the ${formatBytes(maxBytes)} limit.`;
    return '';
  }

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** The file's extension in a box, for files a browser cannot show. */
  function extensionBox(file) {
    const ext = file.name.includes('.') ? file.name.split('.').pop().toUpperCase().slice(0, 4) : '?';
    const box = element('span', 'upload-preview none', ext);
    box.setAttribute('aria-hidden', 'true');
    return box;
  }

  function preview(file) {
    if (!PREVIEWABLE.includes(typeOf(file)) || file.size === 0) return extensionBox(file);
    const img = element('img', 'upload-preview');
    img.alt = '';
    img.decoding = 'async';
    img.loading = 'lazy'; // hundreds of photos chosen at once are decoded as their rows come into view
    const url = URL.createObjectURL(file);
    img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
    img.addEventListener(
      'error',
      () => {
        URL.revokeObjectURL(url);
        img.replaceWith(extensionBox(file)); // not a picture after all (or one this browser cannot show)
      },
      { once: true },
    );
    img.src = url;
    return img;
  }

  /** A row for one file, shown as soon as it is chosen. */
  function addRow(item) {
    const { file } = item;
    const li = element('li', 'waiting');
    const name = element('span', 'upload-name', `${file.name} (${formatBytes(file.size)})`);
    const bar = element('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', `Upload progress for ${file.name}`);
    const status = element('span', 'upload-status', 'Waiting…');
    const action = element('button', 'link upload-action');
    action.type = 'button';
    action.hidden = true;
    action.addEventListener('click', () => {
      // The button turns from Retry to Cancel under the pointer: a double click must not undo itself.
      if (performance.now() < item.guardUntil) return;
      if (item.state === 'failed') retry(item);
      else cancel(item);
    });
    li.tabIndex = -1; // focus lands on the row when its button goes
    li.append(preview(file), name, bar, status, action);
    list.append(li);
    item.ui = { li, bar, status, action };
  }

  /** Shows the item's state in its row: the class, the words, and which action its button offers. */
  function show(item, words) {
    const { li, bar, status, action } = item.ui;
    li.className = { done: 'ok', failed: 'failed', cancelled: 'cancelled' }[item.state] || item.state;
    status.textContent = words;
    if (item.state === 'failed' || item.state === 'cancelled') bar.hidden = true;
    if (item.state === 'done') bar.value = 100;
    const canCancel = item.state === 'waiting' || item.state === 'sending';
    const canRetry = item.state === 'failed' && item.retryable;
    const hadFocus = document.activeElement === action;
    action.hidden = !(canCancel || canRetry);
    if (hadFocus && action.hidden) li.focus();
    const label = canRetry ? 'Retry' : 'Cancel';
    if (action.textContent === 'Retry' && label === 'Cancel')
      item.guardUntil = performance.now() + ACTION_GUARD_MS;
    action.textContent = label;
    action.setAttribute('aria-label', `${canRetry ? 'Retry' : 'Cancel'} ${item.file.name}`);
    summarize();
  }

  /** How many were done when `uploads-settled` was last sent (the usage meter listens for it). */
  let doneWhenSettled = 0;

  function summarize() {
    const count = (state) => items.filter((item) => item.state === state).length;
    const done = count('done');
    const failed = items.filter((item) => item.state === 'failed');
    const cancelled = count('cancelled');
    const active = items.filter(isActive).length;
    if (!active && done !== doneWhenSettled) {
      doneWhenSettled = done;
      // htmx fetches the page's usage meter again (#upload-usage): what these uploads added.
      document.body.dispatchEvent(new CustomEvent('uploads-settled'));
    }
    button.disabled = active > 0;
    // It opens the file chooser: once files are in, for more of them.
    button.textContent = active > 0 ? 'Uploading…' : done ? 'Upload more' : 'Upload';
    if (!items.length) return;
    const total = items.length - cancelled;
    let text = `${done} of ${total} uploaded`;
    if (failed.length) {
      const names = failed.slice(0, 3).map((item) => item.file.name);
      if (failed.length > 3) names.push(`${failed.length - 3} more`);
      text += `, ${failed.length} failed: ${names.join(', ')}`;
    }
    if (cancelled) text += `, ${cancelled} cancelled`;
    text += active ? ` · ${active} to go…` : '.';
    summary.replaceChildren(element('span', '', text));
    if (done && !active && doneHref) {
      const link = element('a', 'button secondary', doneLabel);
      link.href = doneHref;
      summary.append(' ', link);
    }
  }

  async function postJson(url, body) {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(APP_TIMEOUT_MS),
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
      // Signed out meanwhile: the app's redirect to the sign-in page is not an answer to read.
      redirect: 'manual',
    });
    if (res.type === 'opaqueredirect')
      throw Object.assign(new Error('You were signed out. Sign in again, then press Retry.'), {
        status: 401,
      });
    const data = await res.json().catch(() => ({}));
    if (res.status === 0) throw new Error('Network error.');
    if (!res.ok)
      throw Object.assign(new Error(data.error || `The server answered ${res.status}.`), {
        status: res.status,
      });
    return data;
  }

  class Cancelled extends Error {}

  /** The app said no (a 4xx): asking again the same way gets the same answer. */
  const isRefusal = (err) => err.status >= 400 && err.status < 500;
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Shows how far the file is, from the bytes sent (parts count each of their own). */
  function progress(item, loaded) {
    if (item.state !== 'sending') return; // cancelled, or failed: its row says so
    const p = Math.min(99, Math.round((loaded / item.file.size) * 100));
    item.ui.bar.value = p;
    item.ui.status.textContent = `${p}%`;
  }

  /** One request to the bucket by XHR, cancelled with its file; resolves with the XHR once answered 2xx. */
  function toBucket(item, method, url, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      item.xhrs.add(xhr);
      xhr.open(method, url);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded, e.total);
      };
      xhr.onload = () => {
        item.xhrs.delete(xhr);
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
        const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText || '')?.[1];
        const words = {
          EntityTooLarge: 'The file changed size while it was uploading; choose it again.',
          AccessDenied: 'The upload link expired before the file arrived.',
        };
        reject(new Error(words[code] || 'Storage refused the file.'));
      };
      xhr.onerror = () => {
        item.xhrs.delete(xhr);
        reject(new Error('Network error while uploading.'));
      };
      xhr.onabort = () => {
        item.xhrs.delete(xhr);
        reject(new Cancelled());
      };
      xhr.send(body);
    });
  }

  /** The file as one form post to the bucket; resolves with the ETag the bucket gave it. */
  async function send(item, policy) {
    const data = new FormData();
    for (const [name, value] of Object.entries(policy.fields)) data.append(name, value);
    // With ACCEPT=any every file is claimed as bytes (the policy allows nothing else; the app sniffs them).
    data.append('Content-Type', anyFile ? 'application/octet-stream' : typeOf(item.file));
    data.append('file', item.file);
    // The form's fields go too: the share of the whole post sent is the share of the file.
    const xhr = await toBucket(item, 'POST', policy.url, data, (loaded, total) =>
      progress(item, (loaded / total) * item.file.size),
    );
    // The stored file's ETag names it at completion (the header needs CORS ExposeHeaders ETag).
    const tag = xhr.getResponseHeader('ETag') || /<ETag>([^<]+)<\/ETag>/.exec(xhr.responseText || '')?.[1];
    return (tag || '').replaceAll('&quot;', '"');
  }

  /**
   * A large file in parts: the app starts the upload (once: Retry goes on with the same one) and
   * signs each part's URL just before it goes. A part whose connection drops is sent again after
   * a pause, up to PART_ATTEMPTS times; parts already in the bucket are not sent again.
   */
  async function sendInParts(item) {
    if (!item.parts) {
      const started = await postJson('/uploads/parts/start', {
        name: item.file.name,
        size: item.file.size,
        type: typeOf(item.file),
        replaces,
      });
      item.policyKey = started.key;
      item.parts = { ...started, sent: new Set(), loaded: new Map() };
      if (item.state === 'cancelled') {
        abandon(item); // cancelled while the upload was starting
        throw new Cancelled();
      }
    }
    const parts = item.parts;
    const waiting = [];
    for (let n = 1; n <= parts.count; n++) if (!parts.sent.has(n)) waiting.push(n);
    const shown = () =>
      progress(
        item,
        [...parts.loaded.values()].reduce((a, b) => a + b, 0),
      );
    /** Set once a part has failed for good: the other parts stop too. */
    let stopped = false;
    async function sendPart(n) {
      const from = (n - 1) * parts.partBytes;
      const body = item.file.slice(from, Math.min(from + parts.partBytes, item.file.size));
      for (let attempt = 1; ; attempt++) {
        if (stopped) throw new Cancelled();
        try {
          const { url } = await postJson('/uploads/parts/url', { key: parts.key, part: n });
          // Cancelled, or another part failed for good, while this URL was on its way.
          if (stopped || item.state !== 'sending') throw new Cancelled();
          await toBucket(item, 'PUT', url, body, (loaded) => {
            parts.loaded.set(n, loaded);
            shown();
          });
          parts.sent.add(n);
          parts.loaded.set(n, body.size);
          return;
        } catch (err) {
          parts.loaded.set(n, 0);
          if (err instanceof Cancelled || item.state === 'cancelled') throw new Cancelled();
          if (attempt >= PART_ATTEMPTS || isRefusal(err)) throw err;
          item.ui.status.textContent = `Connection lost; sending part ${n} again…`;
          await wait(1000 * 2 ** (attempt - 1)); // 1, 2, 4, 8 seconds
        }
      }
    }
    async function worker() {
      while (waiting.length) await sendPart(waiting.shift());
    }
    try {
      await Promise.all(Array.from({ length: Math.min(PARTS_PARALLEL, waiting.length) }, worker));
    } catch (err) {
      stopped = true;
      for (const xhr of item.xhrs) xhr.abort();
      throw err;
    }
  }

  /**
   * Sends one file: a policy, the bucket, the completion. A file the bucket already has (its
   * completion failed, or its answer was lost) is only completed again on Retry: completion is
   * idempotent for its key, so that never makes a second image.
   */
  async function upload(item) {
    item.state = 'sending';
    show(item, 'Starting…');
    // A large file goes in parts, under an upload of its own: the page's form is left for the next.
    const toSendInParts = !item.stored && partBytes > 0 && item.file.size > partBytes;
    const solo = Boolean(formKey) && !item.stored && !toSendInParts;
    soloRunning ||= solo;
    try {
      if (toSendInParts) {
        await sendInParts(item);
        item.stored = { key: item.parts.key, inParts: true };
      } else if (!item.stored) {
        const body = {
          name: item.file.name,
          size: item.file.size,
          replaces,
          ...(solo ? { formKey } : {}),
        };
        if (solo) formKey = '';
        const policy = await postJson(`${endpoint}/presign`, body);
        item.policyKey = policy.key;
        if (item.state === 'cancelled') return abandon(item); // cancelled while its policy was on its way
        const etag = await send(item, policy);
        item.stored = { key: policy.key, ...(etag ? { etag } : {}) };
      }
      item.state = 'finishing';
      show(item, 'Finishing…');
      const { key, etag, inParts } = item.stored;
      const result = inParts
        ? await postJson('/uploads/parts/finish', { key })
        : await postJson(`${endpoint}/complete`, { key, ...(etag ? { etag } : {}) });
      if (!result.url) throw new Error('The server did not say where the image is.');
      item.state = 'done';
      item.url = result.url;
      show(item, '');
      const link = element('a', '', 'Uploaded — view');
      link.href = result.url;
      item.ui.status.append(link);
      if (replaces) window.location.assign(result.url);
    } catch (err) {
      if (err instanceof Cancelled || item.state === 'cancelled') return;
      // The app refused the upload in parts (expired, or a part it does not hold): Retry starts
      // another, and this one is given up so it holds no room meanwhile.
      if (item.parts && isRefusal(err) && err.status !== 401) {
        item.stored = null;
        abandon(item);
        item.parts = null;
      }
      item.state = 'failed';
      item.retryable = true;
      show(item, err.name === 'TimeoutError' ? 'The server did not answer in time.' : err.message);
    } finally {
      if (solo) soloRunning = false;
      pump();
    }
  }

  /** Starts waiting files while fewer than PARALLEL are on their way (one while the page's own runs). */
  function pump() {
    const sending = items.filter((item) => item.state === 'sending' || item.state === 'finishing').length;
    let room = soloRunning ? 0 : (formKey ? 1 : PARALLEL) - sending;
    while (room-- > 0 && queue.length) void upload(queue.shift());
    summarize();
  }

  /**
   * Tells the app a policy will not be used (cancelled, or to be replaced by a fresh one on Retry),
   * so the room it holds in the quota is free at once, not when the policy expires.
   */
  function abandon(item) {
    const key = item.policyKey;
    if (!key || item.stored) return;
    item.policyKey = '';
    void fetch(`${endpoint}/abandon`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ key }),
      credentials: 'same-origin',
      keepalive: true,
    }).catch(() => {}); // not said: the sweep frees it when the policy expires
  }

  function cancel(item) {
    if (item.state === 'waiting') queue.splice(queue.indexOf(item), 1);
    else if (item.state !== 'sending') return; // its file is in: completion cannot be called back
    item.state = 'cancelled';
    for (const xhr of item.xhrs) xhr.abort();
    abandon(item);
    show(item, 'Cancelled.');
    pump();
  }

  function retry(item) {
    // A file the bucket does not have goes under a fresh policy; one in parts goes on with the parts not sent.
    if (!item.parts) abandon(item);
    item.state = 'waiting';
    item.ui.bar.hidden = false;
    item.ui.bar.value = 0;
    queue.push(item);
    show(item, 'Waiting…');
    pump();
  }

  function add(files) {
    // Replacing an image takes one file: another only once the one chosen has failed or was cancelled.
    if (replaces && items.some((item) => isActive(item) || item.state === 'done')) return;
    for (const file of replaces ? files.slice(0, 1) : files) {
      const item = {
        file,
        state: 'waiting',
        retryable: false,
        xhrs: new Set(),
        parts: null,
        ui: null,
        guardUntil: 0,
      };
      items.push(item);
      addRow(item);
      const problem = refusal(file);
      if (problem) {
        item.state = 'failed';
        show(item, problem);
        continue;
      }
      queue.push(item);
      show(item, 'Waiting…');
    }
    input.value = ''; // queued: the same files may be chosen again, and nothing is sent twice
    pump();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.files.length) add([...input.files]);
    else if (!items.some(isActive)) input.click();
  });
  input.addEventListener('change', () => {
    if (input.files.length) add([...input.files]);
  });
  for (const type of ['dragenter', 'dragover']) {
    dropzone.addEventListener(type, (e) => {
      e.preventDefault();
      dropzone.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    dropzone.addEventListener(type, () => dropzone.classList.remove('dragging'));
  }
  dropzone.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) add(files);
  });
})();
