import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io';
import { HubError } from '../../shared/errors.ts';
import type { Transfer } from '../../shared/schemas/transfer.ts';

/** The most bytes one part of a transfer holds. */
export const PART_BYTES = 1 << 20;

/** Splits a body into parts of at most PART_BYTES that share its memory. */
export function partsOf(body: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += PART_BYTES) parts.push(body.subarray(at, at + PART_BYTES));
  return parts.length ? parts : [body];
}

/** A transfer not read from for this long is dropped. */
const IDLE_MS = 60_000;
/** Transfers one socket may hold open; opening another drops its oldest. */
const PER_SOCKET = 64;

interface OpenTransfer {
  socketId: string;
  parts: readonly Buffer[];
  /** Parts not read yet; the transfer goes once none is left. */
  unread: Set<number>;
  lastRead: number;
}

/**
 * Reply bodies too big for one socket.io message, held for the socket that asked until it has read
 * every part (or leaves, or stops reading for a minute). Parts are shared, never copied: twenty
 * monitors that subscribe to a big workflow at one version read the same buffers.
 */
export class Transfers {
  private readonly open = new Map<string, OpenTransfer>();
  private readonly bySocket = new Map<string, string[]>();
  private readonly sweeper = setInterval(() => this.sweep(), IDLE_MS / 4).unref();

  /** Holds `parts` for `socket` and says how to read them. */
  offer(socket: Socket, parts: readonly Buffer[]): Transfer {
    const id = `tr_${randomBytes(9).toString('base64url')}`;
    let ids = this.bySocket.get(socket.id);
    if (!ids) {
      ids = [];
      this.bySocket.set(socket.id, ids);
      socket.once('disconnect', () => this.dropSocket(socket.id));
    }
    ids.push(id);
    if (ids.length > PER_SOCKET) this.open.delete(ids.shift()!);
    this.open.set(id, { socketId: socket.id, parts, unread: new Set(parts.keys()), lastRead: Date.now() });
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    return { id, parts: parts.length, bytes };
  }

  /** One part of an open transfer of this socket; NOT_FOUND once it is gone. */
  read(socket: Socket, id: string, part: number): Buffer {
    const transfer = this.open.get(id);
    if (!transfer || transfer.socketId !== socket.id) throw new HubError('NOT_FOUND', `transfer ${id} does not exist (read all its parts within a minute of the reply)`);
    const data = transfer.parts[part];
    if (data === undefined) throw new HubError('VALIDATION', `transfer ${id} has parts 0 to ${transfer.parts.length - 1}`);
    transfer.unread.delete(part);
    transfer.lastRead = Date.now();
    if (transfer.unread.size === 0) this.drop(id);
    return data;
  }

  /** Bytes held for readers, for metrics. */
  heldBytes(): number {
    let bytes = 0;
    for (const transfer of this.open.values()) for (const part of transfer.parts) bytes += part.length;
    return bytes;
  }

  /** Drops everything and stops the sweeper. */
  close(): void {
    clearInterval(this.sweeper);
    this.open.clear();
    this.bySocket.clear();
  }

  private drop(id: string): void {
    const transfer = this.open.get(id);
    if (!transfer) return;
    this.open.delete(id);
    const ids = this.bySocket.get(transfer.socketId);
    if (ids) ids.splice(ids.indexOf(id), 1);
  }

  private dropSocket(socketId: string): void {
    for (const id of this.bySocket.get(socketId) ?? []) this.open.delete(id);
    this.bySocket.delete(socketId);
  }

  private sweep(): void {
    const before = Date.now() - IDLE_MS;
    for (const [id, transfer] of this.open) if (transfer.lastRead < before) this.drop(id);
  }
}
