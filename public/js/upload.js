// Enhances the plain upload form: several files, drag and drop, a progress bar per file.
// Each file gets its own policy from POST /uploads/presign, goes straight to the bucket by XHR,
// and is confirmed with POST /uploads/complete. Without this script the form still works.
// What the page states (accepted types, size limit) is read from the page, not repeated here.
import { formatBytes } from './format.js';

(() => {
  const form = document.getElementById('upload-form');
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  const input = form.querySelector('input[type=file]');
  const list = document.getElementById('upload-list');
  const dropzone = document.getElementById('dropzone');
  const maxBytes = Number(form.dataset.maxBytes);
  const replaces = form.dataset.replaces || '';
  const accepted = input.accept.split(',');
  const typeNames = form.dataset.typeNames;
  // The page's own upload reserved room in the quota: the first file re-signs it instead of a new one.
  let formKey = form.querySelector('input[name="key"]')?.value || '';

  if (!replaces) input.multiple = true;
  form.querySelector('.drop-hint').hidden = false;

  function row(file) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'upload-name';
    name.textContent = `${file.name} (${formatBytes(file.size)})`;
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', `Upload progress for ${file.name}`);
    const status = document.createElement('span');
    status.className = 'upload-status';
    status.textContent = 'Waiting…';
    li.append(name, bar, status);
    list.append(li);
    return {
      progress(p) {
        bar.value = p;
        status.textContent = `${p}%`;
      },
      done(url) {
        li.classList.add('ok');
        bar.value = 100;
        status.textContent = '';
        const link = document.createElement('a');
        link.href = url;
        link.textContent = 'Uploaded — view';
        status.append(link);
      },
      fail(message) {
        li.classList.add('failed');
        bar.remove();
        status.textContent = message;
        status.setAttribute('role', 'alert');
      },
    };
  }

  async function postJson(url, body) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || `The server answered ${res.status}.`);
    return data;
  }

  // A browser that does not know a type (HEIC, on most desktops) gives none: the extension names it.
  const EXTENSION_TYPES = { heic: 'image/heic', heif: 'image/heif' };
  const typeOf = (file) => file.type || EXTENSION_TYPES[file.name.split('.').pop().toLowerCase()] || '';

  function send(policy, file, onProgress) {
    return new Promise((resolve, reject) => {
      const data = new FormData();
      for (const [name, value] of Object.entries(policy.fields)) data.append(name, value);
      data.append('Content-Type', typeOf(file));
      data.append('file', file);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', policy.url);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(Math.min(99, Math.round((e.loaded / e.total) * 100)));
      };
      xhr.onload = () => {
        // The stored file's ETag names it at completion (the header needs CORS ExposeHeaders ETag).
        const tag =
          xhr.getResponseHeader('ETag') || /<ETag>([^<]+)<\/ETag>/.exec(xhr.responseText || '')?.[1];
        if (xhr.status >= 200 && xhr.status < 300) return resolve((tag || '').replaceAll('&quot;', '"'));
        const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText || '')?.[1];
        reject(new Error(code === 'EntityTooLarge' ? 'Too large.' : 'Storage refused the file.'));
      };
      xhr.onerror = () => reject(new Error('Network error while uploading.'));
      xhr.send(data);
    });
  }

  async function upload(file) {
    const ui = row(file);
    if (!accepted.includes(typeOf(file))) return ui.fail(`Not a ${typeNames} image.`);
    if (file.size === 0) return ui.fail('The file is empty.');
    if (file.size > maxBytes) return ui.fail(`Larger than the ${formatBytes(maxBytes)} limit.`);
    try {
      const body = { name: file.name, size: file.size, replaces, ...(formKey ? { formKey } : {}) };
      formKey = '';
      const policy = await postJson('/uploads/presign', body);
      const etag = await send(policy, file, ui.progress);
      ui.progress(100);
      const result = await postJson('/uploads/complete', { key: policy.key, ...(etag ? { etag } : {}) });
      ui.done(result.url);
      return result;
    } catch (err) {
      ui.fail(err.message);
    }
  }

  async function uploadAll(files) {
    const results = [];
    const queue = [...files];
    // The first file alone, through the page's own upload: until it is done, the room the page
    // reserved is not free for the others (it matters on a small quota).
    if (formKey && queue.length) results.push(await upload(queue.shift()));
    // Then two at a time: enough to fill the pipe without starving the page.
    const worker = async () => {
      while (queue.length) results.push(await upload(queue.shift()));
    };
    await Promise.all([worker(), worker()]);
    const ok = results.filter(Boolean);
    if (replaces && ok.length === 1) window.location.assign(ok[0].url);
    form.reset();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.files.length) void uploadAll([...input.files]);
  });
  input.addEventListener('change', () => {
    if (input.files.length) void uploadAll([...input.files]);
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
    if (files.length) void uploadAll(replaces ? files.slice(0, 1) : files);
  });
})();
