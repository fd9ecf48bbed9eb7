import type { Report, ReportReply } from '../shared/schemas/report.ts';
import type { Transfer } from '../shared/schemas/transfer.ts';
import { HubError } from '../shared/errors.ts';
import type { Connection, RequestOptions } from './connection.ts';

/** How many times a request is made whose reply's transfer went before it was read. */
const TRANSFER_TRIES = 3;

/** A connection whose namespace serves `transfer.read`. */
type Reader = Connection<'control'> | Connection<'monitor'>;

/** Reads every part of a transfer and returns its text (UTF-8). */
export async function readTransfer(connection: Reader, transfer: Transfer, options?: RequestOptions): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for (let part = 0; part < transfer.parts; part++) {
    const { data } = await (connection as Connection<'monitor'>).request('transfer.read', { id: transfer.id, part }, options);
    text += decoder.decode(data instanceof ArrayBuffer ? new Uint8Array(data) : data, { stream: part < transfer.parts - 1 });
  }
  return text;
}

/** A report reply with its body in place, read from its transfer when it came as one. */
export async function withBody(connection: Reader, reply: ReportReply, options?: RequestOptions): Promise<Report> {
  const { transfer, body, ...report } = reply;
  return { ...report, body: transfer ? await readTransfer(connection, transfer, options) : (body ?? '') };
}

/** A value sent inline or, when big, as a transfer of its JSON. */
export async function inlineOrTransfer<T>(connection: Reader, value: T | undefined, transfer: Transfer | undefined, options?: RequestOptions): Promise<T> {
  return transfer ? (JSON.parse(await readTransfer(connection, transfer, options)) as T) : (value as T);
}

/**
 * `read` of the reply `ask` gets, asked again when its transfer went before it was read: a
 * transfer is its connection's, and a drop (or a minute, or 64 newer ones) takes it; its
 * NOT_FOUND says nothing of what was asked for.
 */
export async function readWhole<R extends { transfer?: Transfer | undefined }, T>(ask: () => Promise<R>, read: (reply: R) => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    const reply = await ask();
    try {
      return await read(reply);
    } catch (error) {
      if (!(error instanceof HubError) || error.code !== 'NOT_FOUND' || reply.transfer === undefined || tries === TRANSFER_TRIES) throw error;
    }
  }
}
