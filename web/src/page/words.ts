/** Every ending said plainly, in the desktop app's words (src/app/model/placing.rs, ringing.rs). */
import type { SdkError } from '../sdk/index.js';

/** Our call was refused: busy, do not disturb, or declined (with the reason if given). */
export function refusedSentence(peer: string, response: string): { outcome: string; sentence: string } {
  const r = response.trim();
  if (r.toLowerCase() === 'busy') return { outcome: 'busy', sentence: `${peer} is busy` };
  if (r.toLowerCase() === 'dnd') return { outcome: 'declined', sentence: `${peer} is not taking calls (do not disturb)` };
  if (r === '') return { outcome: 'declined', sentence: `${peer} declined` };
  return { outcome: 'declined', sentence: `${peer} declined: ${r}` };
}

/** Our call failed on the server's side. */
export function failureSentence(peer: string, reason: string): { outcome: string; sentence: string } {
  switch (reason) {
    case 'peer_offline':
      return { outcome: 'failed', sentence: `${peer} is offline` };
    case 'peer_no_response':
    case 'expired':
      return { outcome: 'no answer', sentence: `No answer from ${peer}` };
    case 'ended_while_disconnected':
      return { outcome: 'failed', sentence: `The call to ${peer} ended while you were disconnected` };
    default:
      return { outcome: 'failed', sentence: `The call to ${peer} failed` };
  }
}

/** A call that rang at us ended before we answered. */
export function missedSentence(caller: string, reason: string): { outcome: string; sentence: string } {
  switch (reason) {
    case 'answered_elsewhere':
      return { outcome: 'answered elsewhere', sentence: `${caller}'s call was answered on another device` };
    case 'refused_elsewhere':
      return { outcome: 'declined', sentence: `${caller}'s call was declined on another device` };
    case 'ended_while_disconnected':
      return { outcome: 'missed', sentence: `${caller}'s call ended while you were disconnected` };
    default:
      return { outcome: 'missed', sentence: `Missed call from ${caller}` };
  }
}

/** An accepted call ended. */
export function hungUpSentence(peer: string, reason: string, byUs: boolean): string {
  if (reason === 'peer_offline') return `Lost the connection to ${peer}; the call ended`;
  if (reason === 'ended_while_disconnected') return `The call with ${peer} ended while you were disconnected`;
  return byUs ? `Call with ${peer} ended` : `${peer} hung up`;
}

/** A request the server or the SDK refused, for people. */
export function describeError(e: unknown): string {
  const error = e as SdkError;
  switch (error?.code) {
    case 'invalid_token':
      return 'this server needs a valid token for this peer id (ask its operator: softphone token)';
    case 'token_expired':
      return 'the token has expired: get a new one';
    case 'connect_failed':
      return `the server cannot be reached (${error.message})`;
    case 'too_many_calls':
      return 'too many calls at once';
    case 'too_many_sessions':
      return 'this peer id is signed in on too many devices';
    case 'not_connected':
      return 'not connected to the server right now';
    case 'timeout':
      return 'the server did not answer in time';
    case 'rate_limited':
      return 'too many requests: wait a moment';
    default:
      return error?.message ?? String(e);
  }
}
