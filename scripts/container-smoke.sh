#!/usr/bin/env bash
# Repeats the Dockerfile's steps without a Docker daemon: a fresh copy of the sources, npm ci, build,
# prune dev dependencies, start as an unprivileged user with NODE_ENV=production and an empty DATA_DIR,
# run the image's HEALTHCHECK command, sign up through HTTP, run the CLI's doctor, then stop with SIGTERM.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/s3g-container-XXXXXX)
data="$work/data"
app="$work/app"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== container-smoke: %s\n' "$*"; }

step "copy the sources the image copies"
mkdir -p "$app" "$data"
(cd "$repo" && git ls-files -co --exclude-standard -z package.json package-lock.json tsconfig.base.json tsconfig.json tsconfig.build.json packages src public \
  | tar --null -T - -cf -) | tar -xf - -C "$app"

step "npm ci, build, prune dev dependencies"
cd "$app"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
npm prune --omit=dev --no-audit --no-fund --loglevel=error
[ ! -e node_modules/typescript ] || { echo "dev dependencies were not pruned"; exit 1; }
rm -rf src tsconfig.base.json tsconfig.json tsconfig.build.json packages/s3-store/src packages/s3-store/test packages/s3-store/bench packages/s3-store/tsconfig.json

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
run_as=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  # The image runs as the non-root "node" user; here an unprivileged uid owns only DATA_DIR.
  chown -R 65534:65534 "$data"
  chmod 755 "$work"
  chmod -R a+rX "$app"
  run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi

step "start like CMD does, on an empty DATA_DIR (user: ${run_as[*]:-$(id -un)})"
# The image's own command, read from the Dockerfile, and the same as "npm start".
mapfile -t cmd < <(node -e '
  const line = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("CMD [")).pop();
  for (const arg of JSON.parse(line.slice(4))) console.log(arg);' "$repo/Dockerfile")
[ "${cmd[0]:-}" = node ] || { echo "could not read CMD from Dockerfile"; exit 1; }
start_script=$(node -p 'require(process.argv[1]).scripts.start' "$repo/package.json")
# "npm start" may set variables before the command (NAME=value): the image sets each in its ENV.
read -ra start_words <<<"$start_script"
start_env=()
while [ "${#start_words[@]}" -gt 0 ] && [[ ${start_words[0]} =~ ^[A-Z_][A-Z0-9_]*= ]]; do
  start_env+=("${start_words[0]}")
  start_words=("${start_words[@]:1}")
done
[ "${start_words[*]}" = "${cmd[*]}" ] || { echo "npm start ($start_script) differs from the image's CMD (${cmd[*]})"; exit 1; }
for assignment in "${start_env[@]}"; do
  grep -Eq "^(ENV)?[[:space:]]+${assignment}( \\\\)?$" "$repo/Dockerfile" ||
    { echo "npm start sets $assignment; the Dockerfile's ENV does not"; exit 1; }
done
env -i PATH="$PATH" HOME=/tmp NODE_ENV=production HOST=127.0.0.1 PORT="$port" DATA_DIR="$data" "${start_env[@]}" \
  "${run_as[@]}" "${cmd[@]}" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q '"listening"' "$work/server.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "server exited early"; exit 1; }
  sleep 0.1
done

step "the Dockerfile's HEALTHCHECK command"
health_js=$(sed -n 's/.*CMD \["node", "-e", "\(.*\)"\]$/\1/p' "$repo/Dockerfile" | grep fetch)
[ -n "$health_js" ] || { echo "could not read HEALTHCHECK from Dockerfile"; exit 1; }
PORT="$port" node -e "$health_js"
echo "healthcheck passed"

step "sign up the first user (becomes admin) and see the empty gallery"
origin="http://localhost:$port"
base="http://127.0.0.1:$port"
status=$(curl -s -o /dev/null -w '%{http_code}' -c "$work/cookies" -H "Origin: $origin" \
  --data-urlencode 'email=admin@example.com' --data-urlencode 'password=container smoke pass' "$base/signup")
[ "$status" = 303 ] || { echo "sign-up answered $status"; cat "$work/server.log"; exit 1; }
curl -s -b "$work/cookies" "$base/" | grep -q 'No images yet' || { echo "gallery page missing"; exit 1; }
[ -f "$data/gallery.db" ] || { echo "no database in DATA_DIR"; exit 1; }
[ "$(stat -c %u "$data/gallery.db")" = "$(stat -c %u "$data")" ] || { echo "database owned by the wrong user"; exit 1; }

step "the embedded store answers under /s3 and keeps its credentials private"
status=$(curl -s -o /dev/null -w '%{http_code}' "$base/s3/gallery")
[ "$status" = 403 ] || { echo "anonymous bucket access answered $status"; exit 1; }
[ "$(stat -c %a "$data/embedded-s3.json")" = 600 ] || { echo "embedded-s3.json is not mode 600"; exit 1; }
curl -s -b "$work/cookies" "$base/upload" | grep -q "action=\"$origin/s3/gallery\"" || { echo "upload form does not post to the bucket"; exit 1; }

step "upload a JPEG and an iPhone HEIC as upload.js does: the built app makes their copies"
node -e "require('sharp')({create:{width:640,height:480,channels:3,background:'#3a7a5a'}}).jpeg().toFile(process.argv[1])" "$work/photo.jpg"
node -e "require('sharp')({create:{width:640,height:480,channels:3,background:'#3a7a5a'}}).png().toFile(process.argv[1])" "$work/photo.png"
heif-enc -q 80 -o "$work/photo.heic" "$work/photo.png" >/dev/null
session=$(awk '$6 == "s3g_session" {print $7}' "$work/cookies")
for file in photo.jpg photo.heic; do
  ORIGIN="$origin" BASE="$base" SESSION="$session" FILE="$work/$file" node --input-type=module -e '
    const { ORIGIN, BASE, SESSION, FILE } = process.env;
    const name = FILE.split("/").pop();
    const headers = { Origin: ORIGIN, Cookie: `s3g_session=${SESSION}`, "Content-Type": "application/json", Accept: "application/json" };
    const bytes = (await import("node:fs")).readFileSync(FILE);
    const presign = await fetch(`${BASE}/uploads/presign`, { method: "POST", headers, body: JSON.stringify({ name, size: bytes.length }) });
    const policy = await presign.json();
    const form = new FormData();
    for (const [k, v] of Object.entries(policy.fields)) form.append(k, v);
    form.append("Content-Type", name.endsWith(".heic") ? "image/heic" : "image/jpeg");
    form.append("file", new Blob([bytes]), name);
    const stored = await fetch(policy.url, { method: "POST", body: form });
    if (stored.status !== 201) throw new Error(`the store answered ${stored.status}`);
    const done = await fetch(`${BASE}/uploads/complete`, { method: "POST", headers, body: JSON.stringify({ key: policy.key }) });
    if (done.status !== 200) throw new Error(`completion answered ${done.status}: ${await done.text()}`);
    console.log(`${name}: ${(await done.json()).url}`);
  ' || { echo "uploading $file failed"; cat "$work/server.log"; exit 1; }
done

step "the CLI works in the image: doctor against the running app"
env -i PATH="$PATH" HOME=/tmp NODE_ENV=production HOST=127.0.0.1 PORT="$port" DATA_DIR="$data" \
  "${run_as[@]}" node dist/cli.js doctor || { echo "doctor failed"; exit 1; }

step "SIGTERM stops it cleanly"
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[ "$code" = 0 ] || { echo "exit code $code after SIGTERM"; cat "$work/server.log"; exit 1; }
echo "container-smoke: ok"
