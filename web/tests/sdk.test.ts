/**
 * The web SDK against a real `softphone server` (and real headless peers):
 * login, the invitation lifecycle on both sides with Agora's states and
 * local errors, multi-device, presence, reconnect and repair, tokens, the
 * voice handshake's signaling.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SdkError, backoffDelay, DEFAULT_BACKOFF, type ClientConfig, type ClientEvents } from '../src/sdk/index.js';
import { Server, Peer } from './support/processes.js';

const servers: Server[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) await c.logout().catch(() => undefined);
  for (const s of servers) await s.stop();
});

async function server(options: Parameters<typeof Server.start>[0] = {}): Promise<Server> {
  const s = await Server.start(options);
  servers.push(s);
  return s;
}

async function connect(s: Server, peerId: string, extra: Partial<ClientConfig> = {}): Promise<Client> {
  const c = await Client.connect({ url: s.wsUrl, peerId, ...extra });
  clients.push(c);
  return c;
}

/** The next `name` event of `client`. */
function next<K extends keyof ClientEvents & string>(client: Client, name: K, timeoutMs = 10_000): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs);
    const off = client.on(name, (detail) => {
      clearTimeout(timer);
      off();
      resolve(detail);
    });
  });
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    assert.ok(e instanceof SdkError, `expected an SdkError, got ${e}`);
    assert.equal(e.code, code);
    return;
  }
  assert.fail(`expected ${code}, got success`);
}

test('backoff: 250 ms doubling to 5 s, shortened by up to half at random', () => {
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 1, 0), 250);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 2, 0), 500);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 10, 0), 5000);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 10, 0.999), 2502);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 3, 0.5), 750);
});

test('logs in, and the local rules fail at once without a round trip', async () => {
  const s = await server();
  const alice = await connect(s, 'alice');
  assert.equal(alice.state, 'CONNECTED');
  assert.ok(alice.session.length > 0);
  assert.equal((await alice.queryPresence(['alice', 'nobody'])).get('nobody'), false);
  await rejectsWith(() => alice.createLocalInvitation('alice'), 'INVALID_ARGUMENT');
  await rejectsWith(() => alice.createLocalInvitation('has space'), 'INVALID_ARGUMENT');
  const inv = alice.createLocalInvitation('bob');
  await rejectsWith(inv.cancel(), 'NOT_STARTED');
  await rejectsWith(inv.hangup(), 'NOT_STARTED');
  await rejectsWith(() => inv.setContent('x'.repeat(8193)), 'INVALID_ARGUMENT');
  inv.setChannelId('room-1');
  await inv.send();
  assert.equal(inv.state, 'SENT_TO_REMOTE');
  await rejectsWith(inv.send(), 'ALREADY_SENT');
  await rejectsWith(() => inv.setContent('late'), 'ALREADY_SENT');
  await inv.cancel();
  assert.equal(inv.state, 'CANCELED');
  await rejectsWith(inv.cancel(), 'ALREADY_END');
  await rejectsWith(alice.createLocalInvitation('bob', inv.callId).send(), 'duplicate_call_id');
});

test('a call between two SDK clients: received, accepted, hung up, with matching states', async () => {
  const s = await server();
  const alice = await connect(s, 'alice');
  const bob = await connect(s, 'bob', { device: 'tab' });
  const ringing = next(bob, 'RemoteInvitationReceived');
  const reached = next(alice, 'LocalInvitationReceivedByPeer');
  const inv = alice.createLocalInvitation('bob');
  inv.setContent('hello');
  await inv.send();
  const { invitation } = await ringing;
  await reached;
  assert.equal(inv.state, 'RECEIVED_BY_REMOTE');
  assert.equal(invitation.callerId, 'alice');
  assert.equal(invitation.content, 'hello');
  assert.equal(invitation.state, 'INVITATION_RECEIVED');
  assert.ok(invitation.expiresInMs > 0);
  const accepted = next(alice, 'LocalInvitationAccepted');
  invitation.setResponse('hi');
  await invitation.accept();
  assert.equal(invitation.state, 'ACCEPTED');
  assert.equal((await accepted).response, 'hi');
  assert.equal(inv.state, 'ACCEPTED_BY_REMOTE');
  assert.equal(inv.device, 'tab');
  await rejectsWith(invitation.accept(), 'ALREADY_ACCEPT');
  await rejectsWith(inv.cancel(), 'ALREADY_ACCEPT');
  const hungUp = next(bob, 'HungUp');
  const mine = next(alice, 'HungUp');
  await inv.hangup();
  assert.deepEqual({ reason: (await hungUp).reason, by: (await hungUp).by }, { reason: 'hangup', by: 'alice' });
  assert.equal((await mine).by, 'alice');
  assert.ok(inv.isEnded && invitation.isEnded);
  await rejectsWith(invitation.hangup(), 'ALREADY_END');
});

test('refused with busy, canceled by the caller, and a callee that is offline', async () => {
  const s = await server({ args: ['--offline-grace', '300ms'] });
  const alice = await connect(s, 'alice');
  const bob = await connect(s, 'bob');
  let ringing = next(bob, 'RemoteInvitationReceived');
  const first = alice.createLocalInvitation('bob');
  await first.send();
  const refused = next(alice, 'LocalInvitationRefused');
  await (await ringing).invitation.refuse('busy');
  assert.equal((await refused).response, 'busy');
  assert.equal(first.state, 'REFUSED_BY_REMOTE');

  ringing = next(bob, 'RemoteInvitationReceived');
  const second = alice.createLocalInvitation('bob');
  await second.send();
  const incoming = (await ringing).invitation;
  const canceled = next(bob, 'RemoteInvitationCanceled');
  await second.cancel();
  assert.equal((await canceled).reason, 'caller_canceled');
  assert.equal(incoming.state, 'CANCELED');
  await rejectsWith(incoming.accept(), 'ALREADY_END');

  const failed = next(alice, 'LocalInvitationFailure');
  await alice.createLocalInvitation('nobody').send();
  assert.equal((await failed).reason, 'peer_offline');
});

test('multi-device: both devices ring, one answers, the other stops with answered_elsewhere', async () => {
  const s = await server();
  const alice = await connect(s, 'alice');
  const bob1 = await connect(s, 'bob', { device: 'tab 1' });
  const bob2 = await connect(s, 'bob', { device: 'tab 2' });
  const r1 = next(bob1, 'RemoteInvitationReceived');
  const r2 = next(bob2, 'RemoteInvitationReceived');
  await alice.createLocalInvitation('bob').send();
  const [{ invitation: one }, { invitation: two }] = await Promise.all([r1, r2]);
  const stopped = next(bob2, 'RemoteInvitationCanceled');
  await one.accept();
  assert.equal((await stopped).reason, 'answered_elsewhere');
  assert.equal(two.state, 'CANCELED');
  await rejectsWith(two.accept(), 'ALREADY_END');
});

test('presence: subscribe, then changes as peers come and go', async () => {
  const s = await server();
  const alice = await connect(s, 'alice');
  assert.equal((await alice.subscribePresence(['carol'])).get('carol'), false);
  const online = next(alice, 'PeersOnlineStatusChanged');
  const carol = await connect(s, 'carol');
  assert.deepEqual(await online, { peerId: 'carol', online: true });
  const offline = next(alice, 'PeersOnlineStatusChanged');
  await carol.logout();
  assert.deepEqual(await offline, { peerId: 'carol', online: false });
  assert.equal(carol.state, 'DISCONNECTED');
  await rejectsWith(carol.queryPresence(['alice']), 'stopped');
});

test('reconnect: a dropped socket comes back and the accepted call is kept (the login lists it)', async () => {
  const s = await server();
  const alice = await connect(s, 'alice', { backoff: { initialMs: 50, multiplier: 2, maxMs: 200, jitter: 0.5 } });
  const bob = await connect(s, 'bob');
  const ringing = next(bob, 'RemoteInvitationReceived');
  const inv = alice.createLocalInvitation('bob');
  await inv.send();
  const accepted = next(alice, 'LocalInvitationAccepted');
  await (await ringing).invitation.accept();
  await accepted;
  let hungUp = false;
  alice.on('HungUp', () => (hungUp = true));
  const back = new Promise<void>((resolve) => {
    const states: string[] = [];
    const off = alice.on('ConnectionStateChanged', ({ state }) => {
      states.push(state);
      if (state === 'CONNECTED') {
        off();
        assert.ok(states.includes('RECONNECTING'), `states: ${states}`);
        resolve();
      }
    });
  });
  alice.dropConnection();
  await back;
  // The repair runs after the login's reply; a request then proves it has.
  await alice.queryPresence(['bob']);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(hungUp, false);
  assert.equal(inv.state, 'ACCEPTED_BY_REMOTE');
  assert.ok(inv.isCallLive);
});

test('reconnect: a restarted server has no calls, so the accepted call ends while disconnected', async () => {
  const s = await server();
  const fast = { backoff: { initialMs: 50, multiplier: 2, maxMs: 300, jitter: 0.5 }, requestTimeoutMs: 2000, heartbeatMs: 500 };
  const alice = await connect(s, 'alice', fast);
  const bob = await connect(s, 'bob', fast);
  const ringing = next(bob, 'RemoteInvitationReceived');
  const inv = alice.createLocalInvitation('bob');
  await inv.send();
  const accepted = next(alice, 'LocalInvitationAccepted');
  await (await ringing).invitation.accept();
  await accepted;
  const ended = next(alice, 'HungUp', 20_000);
  const bobEnded = next(bob, 'HungUp', 20_000);
  await s.restart();
  const { reason, by } = await ended;
  assert.equal(reason, 'ended_while_disconnected');
  assert.equal(by, '');
  assert.equal((await bobEnded).reason, 'ended_while_disconnected');
  assert.equal(alice.state, 'CONNECTED');
});

test('reconnect: a call still ringing after a restart fails with ended_while_disconnected', async () => {
  const s = await server();
  const alice = await connect(s, 'alice', { backoff: { initialMs: 50, multiplier: 2, maxMs: 300, jitter: 0.5 }, requestTimeoutMs: 2000, heartbeatMs: 500 });
  const inv = alice.createLocalInvitation('bob');
  await inv.send();
  const failed = next(alice, 'LocalInvitationFailure', 20_000);
  await s.restart();
  assert.equal((await failed).reason, 'ended_while_disconnected');
  assert.equal(inv.state, 'FAILURE');
});

test('a server with a secret: no token is refused for good, a minted one logs in', async () => {
  const s = await server({ secret: 'a secret of more than sixteen bytes' });
  await rejectsWith(Client.connect({ url: s.wsUrl, peerId: 'alice', token: 'v1.1.bad' }), 'invalid_token');
  const alice = await connect(s, 'alice', { token: s.token('alice') });
  assert.equal(alice.state, 'CONNECTED');
  await rejectsWith(Client.connect({ url: s.wsUrl, peerId: 'bob', token: s.token('alice') }), 'invalid_token');
});

test('an unreachable server rejects the first connect', async () => {
  const s = await server();
  await s.stop();
  await rejectsWith(Client.connect({ url: s.wsUrl, peerId: 'alice', requestTimeoutMs: 2000, heartbeatMs: 500 }), 'connect_failed');
});

test('voice signaling with a v1.1 peer: both sides agree the same safety code, marked as not protecting', async () => {
  const s = await server();
  const alice = await connect(s, 'alice', { media: 'v1.1' });
  const bob = await connect(s, 'bob');
  const ringing = next(bob, 'RemoteInvitationReceived');
  const callerVoice = next(alice, 'VoiceReady');
  const calleeVoice = next(bob, 'VoiceReady');
  await alice.createLocalInvitation('bob').send();
  await (await ringing).invitation.accept();
  const [a, b] = await Promise.all([callerVoice, calleeVoice]);
  assert.match(a.keys.safetyCode, /^\d{6}$/);
  assert.equal(a.keys.safetyCode, b.keys.safetyCode);
  assert.equal(a.keys.protects, false);
  assert.deepEqual(a.keys.send, b.keys.receive);
  assert.ok(a.media.credential && b.media.credential);
});

test('voice signaling, auto: v1.2 where the server carries it (else v1.1), the same code on both sides', async () => {
  const s = await server();
  const alice = await connect(s, 'alice');
  const bob = await connect(s, 'bob');
  assert.ok(alice.serverMedia === 'v1.2' || alice.serverMedia === 'v1.1');
  const ringing = next(bob, 'RemoteInvitationReceived');
  const callerVoice = next(alice, 'VoiceReady');
  const calleeVoice = next(bob, 'VoiceReady');
  await alice.createLocalInvitation('bob').send();
  await (await ringing).invitation.accept();
  const [a, b] = await Promise.all([callerVoice, calleeVoice]);
  assert.match(a.keys.safetyCode, /^\d{6}$/);
  assert.equal(a.keys.safetyCode, b.keys.safetyCode);
  assert.equal(a.keys.protects, alice.serverMedia === 'v1.2');
  assert.equal(b.keys.protects, alice.serverMedia === 'v1.2');
});

test('a headless peer answers the SDK (the Rust and web clients agree on the wire)', async () => {
  const s = await server();
  const peer = await Peer.start(s, 'rusty', ['--auto', 'refuse', '--response', 'busy']);
  const alice = await connect(s, 'alice');
  const refused = next(alice, 'LocalInvitationRefused');
  await alice.createLocalInvitation('rusty').send();
  assert.equal((await refused).response, 'busy');
  await peer.stop();
});
