import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** A whole answer, written straight to the socket when a request is cut before any answer began. */
export interface TimeoutAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** How long one kind of request may take to arrive, and what it is told when it does not. */
interface ArrivalBudget {
  /** from its headers to the last byte of its body */
  totalMs: number;
  answer(req: IncomingMessage): TimeoutAnswer;
}

export interface DeadlineOptions {
  /** the server's socket idle timeout (server.timeout), re-armed while we are the slow side */
  idleMs: number;
  budgetFor(req: IncomingMessage): ArrivalBudget;
  /** told of each request cut for taking too long in all, or for going idle while it arrived */
  onCut?(req: IncomingMessage, reason: 'total' | 'idle'): void;
}

// A cut client gets this long to read its answer, whatever it keeps sending, before the socket goes.
const LINGER_MS = 2000;
const cutSockets = new WeakSet<Socket>();

/**
 * Per-route deadlines on top of Node's socket idle timeout (server.timeout): a body that stops
 * moving, or is still arriving when its budget runs out, gets an answer and loses its connection;
 * an answer the client stopped reading is dropped; a handler that is merely busy is left alone.
 */
export function withDeadlines(listener: Listener, opts: DeadlineOptions): Listener {
  return (req, res) => {
    const budget = opts.budgetFor(req);
    const { socket } = req;
    const cutFor = (reason: 'total' | 'idle') => {
      if (cut(req, res, budget)) opts.onCut?.(req, reason);
    };
    if (hasBody(req)) {
      const timer = setTimeout(() => {
        if (!req.complete) cutFor('total');
      }, budget.totalMs);
      // An answer may go out before the body is all in: the budget holds until the body ends or the socket goes.
      const stop = () => {
        clearTimeout(timer);
        socket.off('close', stop);
      };
      req.once('end', stop);
      socket.once('close', stop);
    }
    // A handler that paused the body and resumed it just now has not given the client a whole idle
    // period to send: the socket may not even have read again yet.
    let readingSince = Date.now();
    req.on('resume', () => {
      readingSince = Date.now();
    });
    // With a listener here Node no longer destroys the socket on its own when it idles: we decide.
    res.on('timeout', () => {
      // A body the handler paused is not the client's to send: we are the slow side (the budget still holds).
      const isWaitingOnClient = !req.complete && req.readableLength === 0 && req.readableFlowing !== false;
      if (isWaitingOnClient && Date.now() - readingSince >= opts.idleMs) cutFor('idle');
      else if (!isWaitingOnClient && socket.writableLength > 0) socket.destroy();
      else socket.setTimeout(opts.idleMs);
    });
    listener(req, res);
  };
}

/**
 * The budget's answer if no answer began yet (as Node does for its own 408), then the socket goes.
 * False when the request was already cut.
 */
function cut(req: IncomingMessage, res: ServerResponse, budget: ArrivalBudget): boolean {
  const { socket } = req;
  if (socket.destroyed || cutSockets.has(socket)) return false;
  cutSockets.add(socket);
  if (res.headersSent || !socket.writable) {
    socket.destroy();
    return true;
  }
  // Whatever the handler writes from now on stays buffered in `res`: the socket is no longer writable.
  socket.end(serialize(budget.answer(req)));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
  return true;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function serialize({ status, headers, body }: TimeoutAnswer): string {
  const fields = { ...headers, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' };
  const head = Object.entries(fields)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head}\r\n${body}`;
}

/** What an app request (a form, JSON) that did not arrive in time is told. */
export function appRequestTimeout(): TimeoutAnswer {
  return {
    status: 408,
    headers: {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'private, no-store',
      'X-Content-Type-Options': 'nosniff',
    },
    body: 'The request took too long to arrive, so it was cancelled. Please try again.\n',
  };
}
