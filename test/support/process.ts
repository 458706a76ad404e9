import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import net from 'node:net';
import { Client } from './app.js';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ServerProcess {
  origin: string;
  child: ChildProcessWithoutNullStreams;
  exited: Promise<number | null>;
  client(): Client;
  output(): string;
  /** log lines at level error or fatal so far */
  errorLines(): number;
}

/** Node running TypeScript sources, with workspace packages read from their sources too. */
export const FROM_SOURCES = ['--conditions=source', '--import', 'tsx'];

/** The real server in its own process (so it can be killed), listening on a fixed port with APP_ORIGIN set. */
export async function spawnServer(dataDir: string, port: number, env: Record<string, string> = {}) {
  const origin = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [...FROM_SOURCES, 'src/server.ts'], {
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_ORIGIN: origin,
      LOG_LEVEL: 'info',
      SIGNUP: 'open',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // Request logs add up under load: keep the tail, and count error lines as they pass.
  let out = '';
  let errorLines = 0;
  const collect = (d: Buffer) => {
    const text = d.toString();
    errorLines += text.match(/"level":(50|60)/g)?.length ?? 0;
    out = (out + text).slice(-200_000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const onData = () => {
      if (out.includes('"msg":"listening"')) {
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited early with ${code}: ${out}`)));
  });
  return {
    origin,
    child,
    exited,
    client: () => new Client((input, init) => fetch(input, init), origin, origin),
    output: () => out,
    errorLines: () => errorLines,
  } satisfies ServerProcess;
}

export interface CliRun {
  code: number | null;
  out: string;
  err: string;
}

/** The CLI as a user runs it: its own process, configured only by the environment. */
export function cli(args: string[], env: Record<string, string>, stdin?: string): Promise<CliRun> {
  const child = spawn(process.execPath, [...FROM_SOURCES, 'src/cli.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
}
