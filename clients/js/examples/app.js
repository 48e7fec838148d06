// The example page: a notifications inbox with an unread count and
// mark-read, a chat room, and who is online in a zone — on one
// PavilionClient that reconnects, renews its token and recovers by itself.
import { PavilionClient } from './pavilion.browser.js';

const $ = (id) => document.getElementById(id);
const config = await (await fetch('/config')).json();
const inbox = new Map(); // notification id → { notification, element }
const online = new Map(); // user id → status
let client;
let user;

function post(path, body) {
  return fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
    .then((r) => r.json());
}

function logEvent(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $('events').prepend(li);
  while ($('events').children.length > 50) $('events').lastChild.remove();
}

// ------------------------------------------------------------------ notifications
function renderUnread() {
  const n = [...inbox.values()].filter((x) => !x.notification.isRead).length;
  $('unread').textContent = String(n);
  $('unread').dataset.count = String(n);
}

function addNotification(n) {
  if (inbox.has(n.id)) return;
  const li = document.createElement('li');
  li.dataset.id = n.id;
  const text = document.createElement('span');
  text.textContent = n.content;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'mark-read';
  button.textContent = 'Mark read';
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await client.markRead(n.id);
      markRead(n.id);
    } catch (err) {
      button.disabled = false;
      logEvent(`mark_read failed: ${err.code} ${err.message}`);
    }
  });
  li.append(text, button);
  $('notifications').prepend(li);
  inbox.set(n.id, { notification: { ...n }, element: li });
  if (n.isRead) markRead(n.id);
  renderUnread();
}

function markRead(id) {
  const entry = inbox.get(id);
  if (!entry) return;
  entry.notification.isRead = true;
  entry.element.classList.add('read');
  entry.element.querySelector('button')?.remove();
  renderUnread();
}

/** What the backend holds (at sign-in, and whenever the gateway says we may have missed some). */
async function loadInbox() {
  const r = await fetch(`/api/inbox?user=${encodeURIComponent(user)}`);
  if (!r.ok) return;
  for (const n of (await r.json()).notifications ?? []) addNotification(n);
}

// ------------------------------------------------------------------ chat and presence
function addChat(m) {
  const li = document.createElement('li');
  const who = document.createElement('b');
  who.textContent = `${m.sender?.username ?? m.sender?.id ?? '?'}: `;
  li.append(who, document.createTextNode(m.content));
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

function renderOnline() {
  const ul = $('online');
  ul.replaceChildren();
  for (const [id, status] of [...online].sort()) {
    if (status === 'offline') continue;
    const li = document.createElement('li');
    li.dataset.user = id;
    li.dataset.status = status;
    li.textContent = `${id} (${status})`;
    ul.append(li);
  }
}

// ------------------------------------------------------------------ the client
function start(tokenGetter) {
  client = new PavilionClient({ url: config.wsUrl, token: tokenGetter });
  client.on('state', (state) => {
    $('state').textContent = state;
    $('state').dataset.state = state;
  });
  client.on('connected', ({ reconnected }) => {
    logEvent(reconnected ? 'reconnected' : 'connected');
    $('who').textContent = `as ${client.userId}`;
  });
  client.on('disconnected', (d) => logEvent(`disconnected (${d.code}${d.reason ? ` ${d.reason}` : ''})`
    + (d.reconnect ? `, retrying in ${d.delayMs} ms` : '')));
  client.on('authFailed', (i) => logEvent(`authentication failed (${i.code}): sign in again`));
  client.on('error', (e) => logEvent(`error ${e.code}: ${e.message}`));
  client.on('notification', (n) => addNotification(n));
  client.on('notification_read', ({ notificationId }) => markRead(notificationId));
  client.on('status_update', (u) => {
    online.set(u.userId, u.status);
    renderOnline();
  });
  client.on('resync', () => {
    logEvent('resync: reloading the inbox');
    loadInbox();
  });
  client.on('unrecovered', (i) => logEvent(`${i.channel}: missed messages could not be replayed`));

  const room = client.channel(`chat:${config.room}`);
  room.on('publication', (p) => {
    if (p.type === 'chat_message') addChat(p.payload);
  });
  const zone = client.channel(`zone:${config.zone}`, { presence: true });
  zone.on('subscribed', () => {
    online.clear(); // a fresh snapshot follows every (re)subscription
    online.set(client.userId, 'online');
    renderOnline();
  });

  client.connect();
  room.subscribe().catch((e) => logEvent(`chat: ${e.code} ${e.message}`));
  zone.subscribe().catch((e) => logEvent(`zone: ${e.code} ${e.message}`));
  client.ready().then(loadInbox, () => undefined);
}

$('room-name').textContent = `chat:${config.room}`;
$('zone-name').textContent = `zone:${config.zone}`;

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const pasted = $('token').value.trim();
  user = $('user').value.trim();
  const getter = pasted
    ? () => pasted
    : async () => (await post('/token', { user })).token;
  if (pasted) {
    try {
      user = JSON.parse(atob(pasted.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub;
    } catch { /* the gateway will say */ }
  }
  $('login').hidden = true;
  $('app').hidden = false;
  start(getter);
});

$('notify-me').addEventListener('click', () => post('/api/notify', { user, content: `test notification ${new Date().toLocaleTimeString()}` }));

$('chat-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('chat-input');
  const content = input.value.trim();
  if (!content) return;
  input.value = '';
  const r = await post('/api/chat', { user, content });
  if (r?.error) logEvent(`chat: ${r.error.message ?? r.error}`);
});
