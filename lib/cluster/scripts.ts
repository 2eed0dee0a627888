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
 * trimmed before they read them. Trims to the last `keep` lines (roughly: whole
 * stream nodes at a time, never fewer).
 *
 * KEYS: stream, line counter. ARGV: lines in the entry (0 for a notice), lines
 * to keep (0: all), then the entry's fields and values. Returns the entry's id.
 */
export const APPEND = `
local count = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local last = redis.call('INCRBY', KEYS[2], count)
local args = {'XADD', KEYS[1]}
if keep > 0 and last > keep then
  args[#args + 1] = 'MINID'
  args[#args + 1] = '~'
  args[#args + 1] = string.format('%d-0', last - keep + 1)
end
args[#args + 1] = string.format('%d-*', last)
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call(unpack(args))
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
 * people's names, forgets them, and tells every node with a `gone` event.
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

/** Every script, by name: what a cluster loads on each connection. */
export const SCRIPTS = { APPEND, CLAIM, RELEASE, REAP, RAISE } as const;
