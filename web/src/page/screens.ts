/**
 * The page's screens, built with dom.ts. Each builder returns its root and
 * the elements the app updates later. The accessible names here are the
 * automation contract (docs/web.md): change none of them.
 */
import { h, field, type Child } from './dom.js';

/** The sign-in form: "Peer id", token, device label, "Sign in". */
export function signInScreen(defaults: { peer: string; device: string; server: string }, supportNote: Child) {
  const peer = h('input', { name: 'peer', autocomplete: 'username', spellcheck: 'false', value: defaults.peer, required: true });
  const token = h('input', { name: 'token', autocomplete: 'off', spellcheck: 'false' });
  const device = h('input', { name: 'device', value: defaults.device });
  const server = h('input', { name: 'server', spellcheck: 'false', value: defaults.server });
  const error = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Softphone'),
    h('p', { class: 'muted' }, 'Sign in to place and answer calls in this tab.'),
    field('Peer id', peer, 'Your name on this phone system: letters, digits or symbols, no spaces.'),
    field('Token (if the server needs one)', token),
    field('Device label', device),
    h('details', {}, h('summary', {}, 'Server'), field('Server address', server)),
    supportNote,
    error,
    submit,
  );
  return { root: form, form, peer, token, device, server, error, submit };
}

/** The phone: who we are, the dial form, the notice line, contacts and history. */
export function phoneScreen(me: string) {
  const status = h('span', { class: 'status', role: 'status' });
  const signOut = h('button', { type: 'button', class: 'quiet' }, 'Sign out');
  const dialInput = h('input', { name: 'callee', autocomplete: 'off', spellcheck: 'false', required: true });
  const dialButton = h('button', { type: 'submit', class: 'primary' }, 'Call');
  const dialForm = h('form', { class: 'dial' }, field('Peer to call', dialInput), dialButton);
  const notice = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const voiceNote = h('p', { class: 'warning', hidden: true });
  const contacts = h('ul', { class: 'contacts', 'aria-label': 'Contacts' });
  const contactInput = h('input', { name: 'contact', autocomplete: 'off', spellcheck: 'false' });
  const contactForm = h('form', { class: 'add-contact' }, field('New contact', contactInput), h('button', { type: 'submit' }, 'Add contact'));
  const missed = h('span', { class: 'badge', hidden: true });
  const history = h('ol', { class: 'history', 'aria-label': 'History' });
  const root = h(
    'section',
    { class: 'phone' },
    h('header', { class: 'bar' }, h('strong', {}, `Signed in as ${me}`), status, signOut),
    voiceNote,
    h('div', { class: 'card' }, dialForm, notice),
    h('div', { class: 'columns' },
      h('section', { class: 'card', 'aria-labelledby': 'contacts-title' }, h('h2', { id: 'contacts-title' }, 'Contacts'), contacts, contactForm),
      h('section', { class: 'card', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'History ', missed), history),
    ),
  );
  return { root, status, signOut, dialForm, dialInput, dialButton, notice, voiceNote, contacts, contactForm, contactInput, missed, history };
}

/** Ringing out: "Calling bob", what the network says, "Cancel". */
export function outgoingScreen(peer: string) {
  const stage = h('p', { class: 'muted', role: 'status' }, 'Sending the invitation...');
  const cancel = h('button', { type: 'button', class: 'danger' }, 'Cancel');
  const root = h('section', { class: 'card calling' }, h('h1', {}, `Calling ${peer}`), stage, cancel, h('p', { class: 'hint' }, 'Esc cancels'));
  return { root, stage, cancel };
}

/** The call screen. */
export function callScreen(peer: string) {
  const duration = h('p', { class: 'duration', 'aria-label': 'Duration' }, '00:00');
  const code = h('output', { class: 'code', 'aria-label': 'Safety code' });
  const codeNote = h('p', { class: 'muted' }, 'Compare this code with the other person');
  // Hidden until the handshake gives a code (a call without voice has none).
  const safety = h('div', { class: 'safety', hidden: true }, h('span', { class: 'muted' }, 'Safety code'), code, codeNote);
  const voiceLine = h('p', { class: 'muted', role: 'status' }, 'Connecting voice...');
  const mute = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Mute');
  const volume = h('input', { type: 'range', min: '0', max: '2', step: '0.05', value: '1', 'aria-label': 'Speaker volume' });
  const mic = h('meter', { min: '-60', max: '0', low: '-40', high: '-6', optimum: '-20', value: '-60', 'aria-label': 'Microphone level' });
  const quality = h('p', { class: 'quality', 'aria-label': 'Quality' });
  const hangup = h('button', { type: 'button', class: 'danger' }, 'Hang up');
  const root = h(
    'section',
    { class: 'card in-call' },
    h('p', { class: 'muted' }, 'In call with'),
    h('h1', {}, peer),
    duration,
    safety,
    voiceLine,
    h('div', { class: 'controls' },
      mute,
      h('label', { class: 'inline' }, h('span', {}, 'Speaker'), volume),
      h('label', { class: 'inline' }, h('span', {}, 'Microphone'), mic),
    ),
    quality,
    hangup,
    h('p', { class: 'hint' }, 'M mutes'),
  );
  return { root, duration, safety, code, codeNote, voiceLine, mute, volume, mic, quality, hangup };
}

/** The incoming-call dialog: named "Incoming call", with "Accept" and "Refuse". */
export function incomingDialog(caller: string, channel: string) {
  const left = h('p', { class: 'muted' });
  const accept = h('button', { type: 'button', class: 'primary' }, 'Accept');
  const refuse = h('button', { type: 'button', class: 'danger' }, 'Refuse');
  const root = h(
    'div',
    { class: 'overlay' },
    h(
      'div',
      { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'incoming-title', 'aria-describedby': 'incoming-who', class: 'card dialog' },
      h('h2', { id: 'incoming-title' }, 'Incoming call'),
      h('p', { id: 'incoming-who', class: 'caller' }, `${caller} is calling`),
      channel ? h('p', { class: 'muted' }, `Channel: ${channel}`) : null,
      left,
      h('div', { class: 'row' }, accept, refuse),
      h('p', { class: 'hint' }, 'Enter accepts, Esc refuses'),
    ),
  );
  return { root, left, accept, refuse };
}
