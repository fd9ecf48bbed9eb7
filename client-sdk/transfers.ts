import type { Report, ReportReply } from '../shared/schemas/report.ts';
import type { Transfer } from '../shared/schemas/transfer.ts';
import type { Connection, RequestOptions } from './connection.ts';

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
