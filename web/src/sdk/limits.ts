/**
 * The protocol's limits on identifiers and texts (docs/protocol.md,
 * "Identifiers and limits"), checked before a request leaves so that bad
 * input fails locally with INVALID_ARGUMENT and nothing is sent.
 */
import { SdkError } from './errors.js';

const encoder = new TextEncoder();

function printableAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** A peer or call id: 1 to 64 bytes of printable ASCII. */
export function checkId(field: string, value: string): void {
  if (typeof value !== 'string' || value.length < 1 || value.length > 64 || !printableAscii(value)) {
    throw new SdkError('INVALID_ARGUMENT', `${field} must be 1 to 64 characters of printable ASCII, no spaces`);
  }
}

/** A text field of at most `maxBytes` bytes of UTF-8. */
export function checkText(field: string, value: string, maxBytes: number): void {
  if (typeof value !== 'string' || encoder.encode(value).length > maxBytes) {
    throw new SdkError('INVALID_ARGUMENT', `${field} must be at most ${maxBytes} bytes of UTF-8`);
  }
}

/** A list of peers for presence: at most 512, each a valid id. */
export function checkPeers(peers: readonly string[]): void {
  if (!Array.isArray(peers) || peers.length > 512) {
    throw new SdkError('INVALID_ARGUMENT', 'at most 512 peers a request');
  }
  for (const p of peers) checkId('peer_ids', p);
}

export const CONTENT_MAX = 8192;
export const CHANNEL_MAX = 64;
export const DEVICE_MAX = 64;
