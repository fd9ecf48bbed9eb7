import { Encoder, PacketType, type Packet } from 'socket.io-parser';
import { describe, expect, it } from 'vitest';
import { EncodedJson, holdsEncoded, hubParser } from '../server/transport/encoded-json.ts';

const plain = new Encoder();
const hub = new hubParser.Encoder();

/** An ack packet as socket.io builds it for a request's reply. */
const ack = (reply: unknown, nsp = '/monitor'): Packet => ({ type: PacketType.ACK, nsp, id: 42, data: [{ ok: true, data: reply }] });

describe('the hub’s socket.io encoder', () => {
  it('writes a marked reply as socket.io writes the same reply with the values in place', () => {
    const first = { id: 'wf_1', note: 'quotes " and \\ and \u0000 and ünïcode', list: [1, null, { deep: true }] };
    const second = { id: '@agents', agents: {} };
    const reply = (a: unknown, b: unknown) => ({
      docs: [
        { doc: 'wf_1', epoch: 'e', mode: 'snapshot', version: 3, state: a },
        { doc: '@agents', epoch: 'e', mode: 'snapshot', version: 1, state: b },
        { doc: 'wf_2', epoch: 'e', mode: 'patches', from: 1, to: 2, ops: [{ op: 'replace', path: '/x', value: 'encoded-' }] },
      ],
    });
    const marked = holdsEncoded(reply(new EncodedJson(JSON.stringify(first)), new EncodedJson(JSON.stringify(second))));
    for (const nsp of ['/monitor', '/']) {
      const [text] = hub.encode(ack(marked, nsp));
      expect(text).toBe(plain.encode(ack(reply(first, second), nsp))[0]);
      expect(JSON.parse((text as string).slice((text as string).indexOf('[')))).toEqual([{ ok: true, data: reply(first, second) }]);
    }
  });

  it('leaves every other packet to socket.io’s encoder, binary attachments included', () => {
    const packets: Packet[] = [
      ack({ version: 3, state: { a: 1 } }),
      { type: PacketType.EVENT, nsp: '/monitor', data: ['patch', { doc: 'wf_1', from: 1, to: 2, ops: [] }] },
      { type: PacketType.EVENT, nsp: '/agent', data: ['file', { bytes: Buffer.from('binary') }] },
    ];
    for (const packet of packets) expect(hub.encode(packet)).toEqual(plain.encode(packet));
  });
});
