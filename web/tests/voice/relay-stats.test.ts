// The relay client's pure parts, the receive statistics and voiceSupport()'s
// sentence where WebCodecs is missing (node has none).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { voiceSupport } from '../../src/voice/call.ts';
import { RelayError, decodeCredential, mediaUrl } from '../../src/voice/relay.ts';
import { ReceiveStats, levelDbfs } from '../../src/voice/stats.ts';

describe('relay', () => {
  test('/media is on the signaling URL scheme, host and port', () => {
    assert.equal(mediaUrl('/media', 'ws://127.0.0.1:7878/'), 'ws://127.0.0.1:7878/media');
    assert.equal(mediaUrl('/media', 'wss://phone.example:443/'), 'wss://phone.example/media');
    assert.equal(mediaUrl('/media', 'http://127.0.0.1:7878/'), 'ws://127.0.0.1:7878/media');
  });

  test('a credential is 16 bytes of unpadded base64url, anything else a RelayError', () => {
    assert.deepEqual(Array.from(decodeCredential('AAECAwQFBgcICQoLDA0ODw')), Array.from({ length: 16 }, (_, i) => i));
    for (const bad of ['', 'AAECAwQFBgcICQoLDA0ODw==', 'AAECAwQFBgcICQoLDA0OD', 'AAECAwQFBgcICQoLDA0O+w']) {
      assert.throws(() => decodeCredential(bad), RelayError);
    }
  });
});

describe('receive statistics', () => {
  test('loss over a second and RFC 3550 jitter', () => {
    const stats = new ReceiveStats();
    assert.equal(stats.lossPct(), null);
    // 60 packets, every tenth lost, arriving exactly on time.
    for (let seq = 0; seq < 60; seq++) if (seq % 10 !== 5) stats.note(seq, seq * 960, seq * 20);
    assert.equal(Math.round(stats.lossPct()!), 10);
    assert.ok(stats.jitterMs < 0.001);
    const jittery = new ReceiveStats();
    for (let seq = 0; seq < 200; seq++) jittery.note(seq, seq * 960, seq * 20 + (seq % 2) * 8);
    assert.ok(jittery.jitterMs > 6 && jittery.jitterMs < 9, `jitter ${jittery.jitterMs}`);
  });

  test('levels in dBFS', () => {
    assert.equal(levelDbfs(new Float32Array(960)), -100);
    assert.ok(Math.abs(levelDbfs(new Float32Array(960).fill(0.5)) - -6.02) < 0.01);
  });
});

describe('support', () => {
  test('without WebCodecs voiceSupport says so in a sentence', async () => {
    const support = await voiceSupport();
    assert.equal(support.ok, false);
    assert.match((support as { reason: string }).reason, /WebCodecs/);
  });
});
