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
/** Bytes all transfers may hold together (the newest is kept whatever its size). */
const MAX_HELD_BYTES = 1 << 30;
/** Transfers one socket may hold open; opening another drops its oldest. */
const PER_SOCKET = 64;

interface OpenTransfer {
  socketId: string;
  parts: readonly Buffer[];
  /** Parts not read yet; the transfer goes once none is left. */
  unread: Set<number>;
  /** On performance.now(): a step of the wall clock must neither drop transfers being read nor keep idle ones. */
  lastRead: number;
}

/**
 * Reply bodies too big for one socket.io message, held for the socket that asked until it has read
 * every part (or leaves, or stops reading for a minute); nothing is held for a socket that left
 * before its reply was ready. Parts are shared, never copied: twenty
 * monitors that subscribe to a big workflow at one version read the same buffers. What all
 * transfers hold is bounded: past MAX_HELD_BYTES the oldest go (their readers get NOT_FOUND and
 * ask again), so monitors that ask and never read cannot fill the hub's memory.
 */
export class Transfers {
  private readonly open = new Map<string, OpenTransfer>();
  private readonly bySocket = new Map<string, string[]>();
  /** Each distinct body held, with how many transfers hold it. */
  private readonly bodies = new Map<readonly Buffer[], { transfers: number; bytes: number }>();
  private held = 0;
  private readonly sweeper = setInterval(() => this.sweep(), IDLE_MS / 4).unref();

  constructor(private readonly maxHeldBytes = MAX_HELD_BYTES) {}

  /** Holds `parts` for `socket` and says how to read them. */
  offer(socket: Socket, parts: readonly Buffer[]): Transfer {
    // Its 'disconnect' has fired already: held, the transfer would wait out the sweep, and its socket's entry stay for good.
    if (socket.disconnected) throw new HubError('UNAVAILABLE', 'the connection closed before the reply was ready');
    const id = `tr_${randomBytes(9).toString('base64url')}`;
    let ids = this.bySocket.get(socket.id);
    if (!ids) {
      ids = [];
      this.bySocket.set(socket.id, ids);
      socket.once('disconnect', () => this.dropSocket(socket.id));
    }
    ids.push(id);
    if (ids.length > PER_SOCKET) this.drop(ids[0]!);
    let body = this.bodies.get(parts);
    if (!body) {
      let bytes = 0;
      for (const part of parts) bytes += part.length;
      body = { transfers: 0, bytes };
      this.bodies.set(parts, body);
      this.held += bytes;
    }
    body.transfers++;
    this.open.set(id, { socketId: socket.id, parts, unread: new Set(parts.keys()), lastRead: performance.now() });
    // Oldest first, never the one just offered.
    for (const oldest of this.open.keys()) {
      if (this.held <= this.maxHeldBytes || oldest === id) break;
      this.drop(oldest);
    }
    return { id, parts: parts.length, bytes: body.bytes };
  }

  /** One part of an open transfer of this socket; NOT_FOUND once it is gone. */
  read(socket: Socket, id: string, part: number): Buffer {
    const transfer = this.open.get(id);
    if (!transfer || transfer.socketId !== socket.id) throw new HubError('NOT_FOUND', `transfer ${id} does not exist (read all its parts within a minute of the reply, and ask again)`);
    const data = transfer.parts[part];
    if (data === undefined) throw new HubError('VALIDATION', `transfer ${id} has parts 0 to ${transfer.parts.length - 1}`);
    transfer.unread.delete(part);
    transfer.lastRead = performance.now();
    if (transfer.unread.size === 0) this.drop(id);
    return data;
  }

  /** Drops everything and stops the sweeper. */
  close(): void {
    clearInterval(this.sweeper);
    this.open.clear();
    this.bySocket.clear();
    this.bodies.clear();
    this.held = 0;
  }

  /** Lets go of one transfer, and of its body when no other transfer holds it. */
  private drop(id: string): void {
    const transfer = this.open.get(id);
    if (!transfer) return;
    this.open.delete(id);
    const ids = this.bySocket.get(transfer.socketId);
    if (ids) ids.splice(ids.indexOf(id), 1);
    const body = this.bodies.get(transfer.parts)!;
    if (--body.transfers > 0) return;
    this.bodies.delete(transfer.parts);
    this.held -= body.bytes;
  }

  private dropSocket(socketId: string): void {
    for (const id of [...(this.bySocket.get(socketId) ?? [])]) this.drop(id);
    this.bySocket.delete(socketId);
  }

  private sweep(): void {
    const before = performance.now() - IDLE_MS;
    for (const [id, transfer] of this.open) if (transfer.lastRead < before) this.drop(id);
  }
}
