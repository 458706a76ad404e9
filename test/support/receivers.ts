import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

interface Mail {
  to: string[];
  text: string;
}

/** Undoes quoted-printable soft breaks and escapes, enough to read a UTF-8 text mail back. */
function decodeQuotedPrintable(raw: string): string {
  const text = raw.replace(/=\r\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A real SMTP server in-process; it can be stopped and started again on the same port. */
export class MailServer {
  readonly mails: Mail[] = [];
  /** How many of the next messages to hold unanswered (a send in progress) instead of accepting. */
  holdNext = 0;
  readonly held: { to: string[]; answer: (err?: Error) => void }[] = [];
  private server: SMTPServer | undefined;
  port = 0;
  isRunning = false;

  async start(port = 0): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, done) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (this.holdNext > 0) {
            this.holdNext--;
            this.held.push({ to: session.envelope.rcptTo.map((r) => r.address), answer: done });
            return;
          }
          this.mails.push({
            to: session.envelope.rcptTo.map((r) => r.address),
            text: decodeQuotedPrintable(Buffer.concat(chunks).toString('latin1')),
          });
          done();
        });
      },
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
    this.isRunning = true;
  }

  stop(): Promise<void> {
    this.isRunning = false;
    return new Promise((resolve) => this.server?.close(() => resolve()));
  }
}

/**
 * A real HTTP receiver for webhooks that answers with whatever status the test sets, or, while
 * state.hang is set, keeps the request unanswered (a delivery in progress) until dropHung().
 */
export async function startReceiver() {
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const state = { status: 200, hang: false };
  const hung: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      if (state.hang) hung.push(res);
      else res.writeHead(state.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    state,
    dropHung: () => {
      for (const res of hung.splice(0)) res.destroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
