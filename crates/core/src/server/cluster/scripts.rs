//! The Lua scripts that make every change to the cluster's shared state
//! one atomic step in Redis, and the typed calls that run them.
//!
//! Each script checks what it depends on and changes the keys in one go:
//! a call transition is a compare-and-set on the call's key (the caller
//! passes the JSON it read, and nothing changes if the key no longer holds
//! it), and the events the transition causes are published, or kept for an
//! offline peer, by the same script, so an event goes out if and only if
//! its transition won. Key names are in `docs/scale-out.md`. The scripts
//! compute key names from their arguments, which a single Redis (or a
//! Sentinel-managed one) allows and Redis Cluster does not.

use redis::Script;

/// Functions every script shares: delivering an event to a peer's
/// sessions on whichever nodes hold them, telling the nodes that watch a
/// peer about its presence, and a session leaving.
const PRELUDE: &str = r#"
-- Publishes on a node's channel. A node not listening (its subscription
-- is coming back after Redis or the connection went away) finds the
-- message in its backlog when it listens again; a lost node's is dropped.
local function publish(node, message)
  if redis.call('PUBLISH', 'sp:n:' .. node, message) == 0 then
    redis.call('RPUSH', 'sp:bl:' .. node, message)
    redis.call('PEXPIRE', 'sp:bl:' .. node, 60000)
  end
end

-- `call` is the call's id and new record (empty once it ended), carried
-- with the event so the receiving node knows the call as it is now.
local function deliver(peer, except, seen, text, call)
  local fields = redis.call('HKEYS', 'sp:s:' .. peer)
  if #fields == 0 then
    if seen == '1' then
      local left = redis.call('PTTL', 'sp:off:' .. peer)
      if left > 0 then
        redis.call('RPUSH', 'sp:q:' .. peer, text)
        redis.call('PEXPIRE', 'sp:q:' .. peer, left)
      end
    end
    return
  end
  local by_node = {}
  for _, field in ipairs(fields) do
    if field ~= except then
      local at = string.find(field, '/', 1, true)
      local node = string.sub(field, 1, at - 1)
      local sid = string.sub(field, at + 1)
      if by_node[node] then by_node[node] = by_node[node] .. ',' .. sid else by_node[node] = sid end
    end
  end
  for node, sids in pairs(by_node) do
    publish(node, 'c' .. sids .. '\n' .. call .. '\n' .. text)
  end
end

local function deliver_from(args, first, call)
  for i = first, #args, 4 do deliver(args[i], args[i + 1], args[i + 2], args[i + 3], call) end
end

local function presence(peer, online)
  for _, node in ipairs(redis.call('SMEMBERS', 'sp:w:' .. peer)) do
    publish(node, 'p' .. online .. peer)
  end
end

-- One fewer of the caller's calls rings at the callee (`sp:rf:CALLER`,
-- callee to count: the cap on calls ringing at one callee, kept in step).
local function unring(caller, callee)
  if redis.call('HINCRBY', 'sp:rf:' .. caller, callee, -1) <= 0 then
    redis.call('HDEL', 'sp:rf:' .. caller, callee)
  end
end

local function calls_of(peer)
  return redis.call('SUNION', 'sp:ch:' .. peer, 'sp:rg:' .. peer)
end

-- Removes one session; returns 1 if its peer has others, else the peer's
-- live calls (a table): also when the session was already gone, so that a
-- departure retried after a failure still marks its calls.
local function depart(peer, node, sid, now, grace)
  local removed = redis.call('HDEL', 'sp:s:' .. peer, node .. '/' .. sid)
  redis.call('HDEL', 'sp:ns:' .. node, sid)
  if redis.call('EXISTS', 'sp:s:' .. peer) == 1 then return 1 end
  if removed == 0 then return calls_of(peer) end
  redis.call('SET', 'sp:off:' .. peer, now, 'PX', grace)
  redis.call('DEL', 'sp:q:' .. peer)
  redis.call('DECR', 'sp:online')
  presence(peer, '0')
  return calls_of(peer)
end
"#;

/// A new call. ARGV: id, caller, callee, the call's JSON if the callee is
/// online, its deadline, its JSON if not, its deadline, the invitation,
/// the caller's cap on live calls, the cap on its calls ringing at one
/// callee (counted in `sp:rf:CALLER`, callee to calls ringing there).
/// Returns `online` or `offline`, or, when the call is not admitted, what
/// it saw: {ids taken, the caller's live calls, its calls ringing at the
/// callee}, from which the call rules (`rules::admit`) name the error.
const INVITE: &str = r#"
local id, caller, callee = ARGV[1], ARGV[2], ARGV[3]
local taken = redis.call('EXISTS', 'sp:c:' .. id, 'sp:e:' .. id)
local calls = redis.call('SCARD', 'sp:ch:' .. caller)
local ringing = tonumber(redis.call('HGET', 'sp:rf:' .. caller, callee) or '0')
if taken > 0 or calls >= tonumber(ARGV[9]) or ringing >= tonumber(ARGV[10]) then
  return {taken, calls, ringing}
end
local online = redis.call('EXISTS', 'sp:s:' .. callee) == 1
local json, deadline = ARGV[6], ARGV[7]
if online then json, deadline = ARGV[4], ARGV[5] end
redis.call('SET', 'sp:c:' .. id, json)
redis.call('ZADD', 'sp:dl', deadline, id)
redis.call('SADD', 'sp:ch:' .. caller, id)
redis.call('SADD', 'sp:rg:' .. callee, id)
redis.call('HINCRBY', 'sp:rf:' .. caller, callee, 1)
if online then
  deliver(callee, '', '1', ARGV[8], id .. '\n' .. json)
  return 'online'
end
return 'offline'
"#;

/// A transition of a live call. ARGV: id, the JSON read, the mode
/// (`update`, `accept`, `end`), the new JSON (or, to end, what is
/// remembered), the next deadline ('' for none), how long an ended call is
/// remembered (ms), the callee's cap on live calls, caller, callee, a peer
/// whose presence the change depends on ('' for none) and whether it must
/// be online ('1') or offline ('0'), the node whose relay carries the call
/// (''), whether the call was ringing as read ('1'/'0'), then the events:
/// (peer, session to skip, seen, text) each.
/// Returns 1 done, 0 the call changed since it was read, 2 the presence
/// guard failed, 3 the callee is at its cap.
const COMMIT: &str = r#"
local id, mode = ARGV[1], ARGV[3]
local key = 'sp:c:' .. id
if redis.call('GET', key) ~= ARGV[2] then return 0 end
if ARGV[10] ~= '' and (redis.call('EXISTS', 'sp:s:' .. ARGV[10]) == 1) ~= (ARGV[11] == '1') then
  return 2
end
local caller, callee = ARGV[8], ARGV[9]
if mode == 'accept' then
  if redis.call('SCARD', 'sp:ch:' .. callee) >= tonumber(ARGV[7]) then return 3 end
  redis.call('SREM', 'sp:rg:' .. callee, id)
  redis.call('SADD', 'sp:ch:' .. callee, id)
  unring(caller, callee)
end
if mode == 'end' then
  redis.call('DEL', key)
  redis.call('ZREM', 'sp:dl', id)
  redis.call('SREM', 'sp:ch:' .. caller, id)
  redis.call('SREM', 'sp:ch:' .. callee, id)
  redis.call('SREM', 'sp:rg:' .. callee, id)
  redis.call('SET', 'sp:e:' .. id, ARGV[4], 'PX', ARGV[6])
  if ARGV[13] == '1' then unring(caller, callee) end
  if ARGV[12] ~= '' then publish(ARGV[12], 'r' .. id) end
else
  redis.call('SET', key, ARGV[4])
  if ARGV[5] == '' then redis.call('ZREM', 'sp:dl', id) else redis.call('ZADD', 'sp:dl', ARGV[5], id) end
end
local now = ARGV[4]
if mode == 'end' then now = '' end
deliver_from(ARGV, 14, id .. '\n' .. now)
return 1
"#;

/// A session logging in. ARGV: peer, node, session, device, the cap on a
/// peer's sessions. Returns {0} at the cap, else {1 or 2 (came online),
/// the events kept for the peer, its live calls, 0 if this very session
/// was registered already (a node registering its sessions again) else 1}.
const LOGIN: &str = r#"
local peer, node, sid = ARGV[1], ARGV[2], ARGV[3]
local sessions = redis.call('HLEN', 'sp:s:' .. peer)
if sessions >= tonumber(ARGV[5]) then return {0} end
local fresh = redis.call('HSET', 'sp:s:' .. peer, node .. '/' .. sid, ARGV[4])
redis.call('HSET', 'sp:ns:' .. node, sid, peer)
local kept = {}
if sessions == 0 then
  if redis.call('EXISTS', 'sp:off:' .. peer) == 1 then kept = redis.call('LRANGE', 'sp:q:' .. peer, 0, -1) end
  redis.call('DEL', 'sp:q:' .. peer, 'sp:off:' .. peer)
  redis.call('INCR', 'sp:online')
  presence(peer, '1')
  return {2, kept, calls_of(peer), fresh}
end
return {1, kept, calls_of(peer), fresh}
"#;

/// A session leaving. ARGV: peer, node, session, now (ms), the offline
/// grace (ms). Returns what `depart` does.
const LEAVE: &str = r#"
return depart(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"#;

/// Takes over the sessions of a node whose heartbeat lapsed (or, forced,
/// this node's own from before a restart). ARGV: node, '1' to force, now,
/// grace. Returns {peer, calls} for each peer that went offline.
const CLAIM: &str = r#"
local node = ARGV[1]
if ARGV[2] ~= '1' and redis.call('EXISTS', 'sp:hb:' .. node) == 1 then return {} end
redis.call('SREM', 'sp:nodes', node)
local held = redis.call('HGETALL', 'sp:ns:' .. node)
local offline = {}
for i = 1, #held, 2 do
  local calls = depart(held[i + 1], node, held[i], ARGV[3], ARGV[4])
  if type(calls) == 'table' then
    table.insert(offline, {held[i + 1], calls})
  end
end
redis.call('DEL', 'sp:ns:' .. node, 'sp:bl:' .. node)
return offline
"#;

/// Renews this node's heartbeat. ARGV: node, ttl (ms). Returns {1 if the
/// heartbeat was still there, 0 if it had lapsed (or Redis lost it); the
/// cluster's live calls (each has one member in `sp:dl`); its peers online
/// (`sp:online`, kept in step where presence changes)}.
const BEAT: &str = r#"
local had = redis.call('EXISTS', 'sp:hb:' .. ARGV[1])
redis.call('SET', 'sp:hb:' .. ARGV[1], '1', 'PX', ARGV[2])
redis.call('SADD', 'sp:nodes', ARGV[1])
return {had, redis.call('ZCARD', 'sp:dl'), tonumber(redis.call('GET', 'sp:online') or '0')}
"#;

/// The scripts, loaded once per node (EVALSHA, with EVAL on a Redis that
/// has not seen them yet, as after a restart).
pub(super) struct Scripts {
    pub invite: Script,
    pub commit: Script,
    pub login: Script,
    pub leave: Script,
    pub claim: Script,
    pub beat: Script,
}

impl Scripts {
    pub fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            invite: with_prelude(INVITE),
            commit: with_prelude(COMMIT),
            login: with_prelude(LOGIN),
            leave: with_prelude(LEAVE),
            claim: with_prelude(CLAIM),
            beat: Script::new(BEAT),
        }
    }
}
