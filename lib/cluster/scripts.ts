/**
 * The Lua scripts a cluster runs in Redis, where a read and a write must
 * happen as one step: numbering a room's lines, claiming a name, removing a
 * node that died. Loaded with SCRIPT LOAD on every connection (a restarted
 * Redis has forgotten them) and run with EVALSHA.
 *
 * @module
 */

/**
 * Appends an entry to a room's stream, numbered by lines: the entry's id is
 * `<line count after it>-<n>`, so readers can tell exactly how many lines were
 * trimmed before they read them.
 *
 * Trims (whole stream nodes at a time, every 64 lines or so) to the last
 * `keep` lines, but never past what a registered node has reported reading
 * (`reading:<node>`), unless that node is more than four times `keep` behind:
 * a node that is merely slow loses nothing (its writers hold their senders
 * long before that, see cluster.ts), and one that stopped cannot make the
 * stream grow without end.
 *
 * Keeps the history of `max rooms` rooms, those appended to last (`rooms`,
 * scored by Redis's clock in microseconds, at a room's first entry and then
 * every 64 lines or so: a score on every entry cost Redis 60% more time per
 * call, measured): anyone may make a room and say a line in it, and each
 * room is a stream and a counter. When a new room takes the count a
 * sixteenth past, both go for the rooms appended to longest ago, up to 100
 * at a time, but not for a room a registered node reads (someone is in it:
 * it is scored as new instead).
 * Such a room starts again from line 1 when next appended to; a node that
 * was taken for dead meanwhile finds its counter behind where it had read,
 * and reads the room from its start (cluster.ts, resync).
 *
 * KEYS: stream, line counter. ARGV: lines in the entry (0 for a notice), lines
 * to keep (0: all), key prefix, room key, max rooms, then the entry's fields
 * and values. Returns the entry's id.
 */
export const APPEND = `
local count = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local prefix = ARGV[3]
local last = redis.call('INCRBY', KEYS[2], count)
local args = {'XADD', KEYS[1]}
if keep > 0 and last > keep and math.floor(last / 64) ~= math.floor((last - count) / 64) then
  local from = last - keep + 1
  for _, node in ipairs(redis.call('SMEMBERS', prefix .. 'nodes')) do
    local read = redis.call('HGET', prefix .. 'reading:' .. node, ARGV[4])
    if read then from = math.min(from, tonumber(read) + 1) end
  end
  from = math.max(from, last - 4 * keep + 1)
  if from > 1 then
    args[#args + 1] = 'MINID'
    args[#args + 1] = '~'
    args[#args + 1] = string.format('%d-0', from)
  end
end
args[#args + 1] = string.format('%d-*', last)
for i = 6, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
if last == count or math.floor(last / 64) ~= math.floor((last - count) / 64) then
  local rooms = prefix .. 'rooms'
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local max = tonumber(ARGV[5])
  if redis.call('ZADD', rooms, now, ARGV[4]) == 1 then
    local n = redis.call('ZCARD', rooms)
    if n > max + math.floor(max / 16) then
      local nodes = redis.call('SMEMBERS', prefix .. 'nodes')
      for _, room in ipairs(redis.call('ZRANGE', rooms, 0, math.min(n - max, 100) - 1)) do
        local read = false
        for _, node in ipairs(nodes) do
          if redis.call('HEXISTS', prefix .. 'reading:' .. node, room) == 1 then
            read = true
            break
          end
        end
        if read then
          redis.call('ZADD', rooms, now, room)
        else
          local stream = prefix .. 'room:' .. room
          redis.call('DEL', stream, stream .. ':n')
          redis.call('ZREM', rooms, room)
        end
      end
    end
  end
end
return id
`;

/**
 * Claims a name for a holder (`<node> <id>`): granted when it is free, held by
 * the holder already, held by the claimer's own node (whose directory has
 * just checked it is free there), or held by a node that is no longer alive.
 *
 * KEYS: the name key. ARGV: holder, claiming node, liveness key prefix.
 * Returns 1 when granted, 0 when someone else holds it.
 */
export const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then
  local node = string.match(current, '^(%S+) ')
  if node and node ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. node) == 1 then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;

/** Gives up a name if `ARGV[1]` still holds it. KEYS: the name key. Returns 1 when released. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * Removes every registered node whose liveness key expired: frees its
 * people's names, forgets them and where it was reading, and tells every node
 * with a `gone` event.
 * Atomic, so two nodes that both notice reap once.
 *
 * ARGV: key prefix, events stream length to keep. Returns the nodes removed.
 */
export const REAP = `
local prefix = ARGV[1]
local reaped = {}
for _, node in ipairs(redis.call('SMEMBERS', prefix .. 'nodes')) do
  if redis.call('EXISTS', prefix .. 'alive:' .. node) == 0 then
    local people = redis.call('HGETALL', prefix .. 'people')
    for i = 1, #people, 2 do
      local ok, person = pcall(cjson.decode, people[i + 1])
      if ok and type(person) == 'table' and person.node == node then
        if type(person.key) == 'string' then
          local name = prefix .. 'name:' .. person.key
          if redis.call('GET', name) == node .. ' ' .. people[i] then
            redis.call('DEL', name)
          end
        end
        redis.call('HDEL', prefix .. 'people', people[i])
      end
    end
    redis.call('DEL', prefix .. 'reading:' .. node)
    redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', ARGV[2], '*',
      'e', cjson.encode({type = 'gone', node = node}))
    redis.call('SREM', prefix .. 'nodes', node)
    reaped[#reaped + 1] = node
  end
end
return reaped
`;

/**
 * Raises the id counter to at least `ARGV[1]`: after Redis lost its data, so
 * that no id still in use on some node is handed out again. KEYS: the counter.
 */
export const RAISE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`;

/**
 * How far the slowest node has read a room's stream: the least line count
 * any registered node reported for it, or -1 when none did. Writers hold
 * their senders while it is too far behind (see cluster.ts, flow control).
 *
 * ARGV: key prefix, room key.
 */
export const SLOWEST = `
local slowest = -1
for _, node in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'nodes')) do
  local line = redis.call('HGET', ARGV[1] .. 'reading:' .. node, ARGV[2])
  if line then
    line = tonumber(line)
    if slowest < 0 or line < slowest then slowest = line end
  end
end
return slowest
`;

/**
 * Sets a topic (unless ARGV[1] is empty) and keeps the topics hash to the
 * `max` set most recently, once it is a sixteenth over: one client making
 * rooms and setting their topics must not fill Redis (the core keeps as many
 * in memory, store.ts MAX_TOPICS). A topic written before the times were
 * kept has none, and goes first. Atomic, so two nodes trimming at once delete
 * nothing set meanwhile. Drops 1,000 at a time (Lua's `unpack` has a limit).
 *
 * KEYS: topics hash, topic times. ARGV: room key (or ""), topic JSON, time, max.
 * Returns how many topics were deleted. Run with EVAL by the store (rare:
 * once per topic set), not loaded with the others.
 */
export const SET_TOPIC = `
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
local max = tonumber(ARGV[4])
local n = redis.call('HLEN', KEYS[1])
if n <= max + math.floor(max / 16) then return 0 end
local untimed = {}
if redis.call('ZCARD', KEYS[2]) < n then
  local timed = {}
  for _, room in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do timed[room] = true end
  for _, room in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not timed[room] then untimed[#untimed + 1] = room end
  end
end
local dropped = 0
for i = 1, #untimed, 1000 do
  if n <= max then break end
  local part = {unpack(untimed, i, math.min(i + 999, #untimed, i - 1 + n - max))}
  local gone = redis.call('HDEL', KEYS[1], unpack(part))
  n = n - gone
  dropped = dropped + gone
end
while n > max do
  local old = redis.call('ZRANGE', KEYS[2], 0, math.min(n - max, 1000) - 1)
  if #old == 0 then break end
  local gone = redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
  n = n - gone
  dropped = dropped + gone
end
return dropped
`;

/** Every script, by name: what a cluster loads on each connection. */
export const SCRIPTS = { APPEND, CLAIM, RELEASE, REAP, RAISE, SLOWEST } as const;
