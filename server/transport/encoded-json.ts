import { randomBytes } from 'node:crypto';
import { Decoder, Encoder, PacketType, type Packet } from 'socket.io-parser';

/** A JSON value serialised ahead of time: the hub's encoder writes its text where it stands. */
export class EncodedJson {
  constructor(readonly json: string) {}
}

/** Marks a reply that holds EncodedJson values; the encoder looks for them in marked replies only. */
const HOLDS_ENCODED = Symbol('holds EncodedJson');

/** Marks `reply` as holding EncodedJson values (see hubParser) and returns it. */
export function holdsEncoded<T extends object>(reply: T): T {
  Object.defineProperty(reply, HOLDS_ENCODED, { value: true });
  return reply;
}

/** Stands for an EncodedJson while the rest of the packet is serialised; never valid JSON text of its own. */
const PLACEHOLDER = `\u0000encoded-${randomBytes(6).toString('hex')}-`;
/** A placeholder as JSON.stringify writes it (the NUL escaped), with the fragment's index. */
const PLACED = new RegExp(`"\\\\u0000${PLACEHOLDER.slice(1)}(\\d+)"`, 'g');

/**
 * socket.io's encoder, except for acks whose reply is marked with holdsEncoded: those are written
 * with each EncodedJson's text spliced in, so that a document a hundred monitors subscribe to at
 * the same version is serialised once instead of once per subscriber, and socket.io's search for
 * binary attachments does not walk it. The packet text is what socket.io's encoder writes for
 * the same reply with the values in place of the EncodedJson, so clients parse it as before.
 */
class HubEncoder extends Encoder {
  override encode(packet: Packet): unknown[] {
    const envelope: unknown = packet.type === PacketType.ACK && Array.isArray(packet.data) ? packet.data[0] : undefined;
    const reply = (envelope as { data?: Record<symbol, unknown> } | undefined)?.data;
    if (typeof reply !== 'object' || reply === null || !reply[HOLDS_ENCODED]) return super.encode(packet);
    const fragments: string[] = [];
    const json = JSON.stringify(packet.data, function (this: Record<string, unknown>, key, value: unknown) {
      const original = this[key];
      if (!(original instanceof EncodedJson)) return value;
      fragments.push(original.json);
      return PLACEHOLDER + (fragments.length - 1);
    });
    // The prefix (type, namespace, ack id) exactly as socket.io writes it: its encoding of the packet without data.
    const prefix = super.encode({ ...packet, data: undefined })[0] as string;
    const text = json.replace(PLACED, (_match, index: string) => fragments[Number(index)]!);
    return [prefix + text];
  }
}

/** The socket.io parser of the hub's server: socket.io's own, with HubEncoder. */
export const hubParser = { Encoder: HubEncoder, Decoder };
