/**
 * After each login, the `calls` list settles every call the client believed
 * live, as the Rust SDK does (docs/sdk.md, "Settling after login"), so that
 * nothing rings for ever after a dropped connection.
 */
import type { Client } from './client.js';
import { LocalInvitation, RemoteInvitation, type Call } from './invitation.js';

/** One entry of the login reply's `calls`. */
export interface ListedCall {
  call_id: string;
  role: 'caller' | 'callee';
  state: 'ringing' | 'accepted';
  peer_id: string;
}

/** Applies `listed` to `calls` (only those still live). */
export function settle(client: Client, calls: Iterable<Call>, listed: ListedCall[]): void {
  const byId = new Map(listed.map((c) => [c.call_id, c]));
  for (const call of [...calls]) {
    if (call.isEnded) continue;
    const entry = byId.get(call.callId);
    if (call instanceof LocalInvitation) settleLocal(client, call, entry);
    else if (call instanceof RemoteInvitation) settleRemote(client, call, entry);
  }
}

function settleLocal(client: Client, inv: LocalInvitation, entry: ListedCall | undefined): void {
  if (inv.state === 'IDLE' && inv.inFlight !== 'invite') return; // never sent
  if (inv.isAccepted) {
    if (!entry) client.endedCall(inv, 'ended_while_disconnected', '');
    return;
  }
  if (!entry) return client.localFailed(inv, 'ended_while_disconnected');
  if (entry.state === 'ringing') {
    if (inv.state === 'IDLE') inv.state = 'SENT_TO_REMOTE';
    if (inv.inFlight === 'invite') inv.inFlight = null;
    return;
  }
  inv.state = 'ACCEPTED_BY_REMOTE';
  inv.inFlight = null;
  client.announce('LocalInvitationAccepted', inv);
}

function settleRemote(client: Client, inv: RemoteInvitation, entry: ListedCall | undefined): void {
  if (inv.isAccepted) {
    if (!entry) client.endedCall(inv, 'ended_while_disconnected', '');
    return;
  }
  if (!entry) return client.remoteFailed(inv, 'ended_while_disconnected');
  const acceptInFlight = inv.state === 'ACCEPT_SENT_TO_LOCAL';
  if (entry.state === 'ringing') {
    if (acceptInFlight) inv.state = 'INVITATION_RECEIVED';
    inv.inFlight = null;
    return;
  }
  if (acceptInFlight) {
    inv.state = 'ACCEPTED';
    inv.inFlight = null;
    client.announce('RemoteInvitationAccepted', inv);
  } else {
    client.remoteCanceled(inv, 'answered_elsewhere');
  }
}
