/**
 * The voice packet on the wire, as src/voice/packet.rs and report.rs
 * (docs/media.md "Packet format"): a 10-byte clear header (version, flags,
 * sequence u32, timestamp u32, all big-endian) that is the AEAD's
 * associated data, then the sealed body: an optional 11-byte report
 * (flag REPORT) and one 20 ms Opus frame.
 */

/** The only version spoken; other versions are malformed. */
export const VERSION = 1;
/** Bytes of the clear header. */
export const HEADER_LEN = 10;
/** Bytes of the Poly1305 tag at the end of every packet. */
export const TAG_LEN = 16;
/** The largest packet accepted (never fragmented). */
export const MAX_PACKET_LEN = 1200;
/** Flag: the body starts with a report. */
export const FLAG_REPORT = 0x01;
/** Flag: the sender is muted (the frame is silence). */
export const FLAG_MUTED = 0x02;
const KNOWN_FLAGS = FLAG_REPORT | FLAG_MUTED;

/** Bytes of a report. */
export const REPORT_LEN = 11;
/** `echoMs` when nothing has been received yet. */
export const NO_ECHO = 0xffffffff;
/** `lossPct` before a full second has been measured. */
export const LOSS_UNKNOWN = 255;

/** Bytes that are not a voice packet (or a body too short for its report). */
export class PacketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketError';
  }
}

export interface Header {
  /** FLAG_* bits. */
  flags: number;
  /** 0, 1, 2, ... per direction: the nonce, the replay index, the playout order. */
  seq: number;
  /** The frame's first sample on the sender's 48 kHz clock. */
  timestamp: number;
}

export function encodeHeader(header: Header): Uint8Array {
  const out = new Uint8Array(HEADER_LEN);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = header.flags;
  view.setUint32(2, header.seq >>> 0, false);
  view.setUint32(6, header.timestamp >>> 0, false);
  return out;
}

/** The header and the sealed body (tag included) of a packet. */
export function parseHeader(packet: Uint8Array): { header: Header; sealed: Uint8Array } {
  if (packet.length < HEADER_LEN + TAG_LEN) {
    throw new PacketError(`packet of ${packet.length} bytes is too short for a header and a tag`);
  }
  if (packet.length > MAX_PACKET_LEN) {
    throw new PacketError(`packet of ${packet.length} bytes is over the ${MAX_PACKET_LEN}-byte limit`);
  }
  if (packet[0] !== VERSION) throw new PacketError(`packet version ${packet[0]} is not ${VERSION}`);
  const flags = packet[1];
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new PacketError(`packet has unknown flags 0x${flags.toString(16).padStart(2, '0')}`);
  }
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const header = { flags, seq: view.getUint32(2, false), timestamp: view.getUint32(6, false) };
  return { header, sealed: packet.subarray(HEADER_LEN) };
}

/**
 * Receiver feedback (RTCP-like): times are milliseconds on the writer's
 * own session clock, so no clock sync is needed.
 */
export interface Report {
  /** When this report was sent, on the sender's clock. */
  sendMs: number;
  /** The newest `sendMs` received from the other side, or NO_ECHO. */
  echoMs: number;
  /** How long that report was held here before this one went out. */
  holdMs: number;
  /** Percent of the other side's packets lost on the way here, or LOSS_UNKNOWN. */
  lossPct: number;
}

export function encodeReport(report: Report): Uint8Array {
  const out = new Uint8Array(REPORT_LEN);
  const view = new DataView(out.buffer);
  view.setUint32(0, report.sendMs >>> 0, false);
  view.setUint32(4, report.echoMs >>> 0, false);
  view.setUint16(8, Math.min(report.holdMs, 0xffff), false);
  out[10] = report.lossPct;
  return out;
}

/** The report at the start of `body` and the Opus frame after it. */
export function splitReport(body: Uint8Array): { report: Report; rest: Uint8Array } {
  if (body.length < REPORT_LEN) {
    throw new PacketError(`packet's body of ${body.length} bytes is too short for its report`);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const loss = body[10];
  const report = {
    sendMs: view.getUint32(0, false),
    echoMs: view.getUint32(4, false),
    holdMs: view.getUint16(8, false),
    lossPct: loss === LOSS_UNKNOWN ? LOSS_UNKNOWN : Math.min(loss, 100),
  };
  return { report, rest: body.subarray(REPORT_LEN) };
}

/** The round trip seen by the side receiving `report` at `nowMs`, if it echoes one of ours. */
export function roundTripMs(report: Report, nowMs: number): number | null {
  if (report.echoMs === NO_ECHO) return null;
  const rtt = ((nowMs >>> 0) - report.echoMs) >>> 0;
  if (rtt < report.holdMs) return null;
  const trip = rtt - report.holdMs;
  // Anything above ten seconds is a confused echo, not a path.
  return trip < 10_000 ? trip : null;
}
