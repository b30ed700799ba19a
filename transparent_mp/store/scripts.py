"""The Lua scripts behind every multi-step operation that must be atomic.

Each is loaded once per connection (``SCRIPT LOAD``) and run by SHA. Every key
a script creates gets ``ARGV[1]`` (the run's key TTL) as its expiry. Scripts
that wake waiters push one token onto each waiter's own list,
``<wake prefix><waiter id>``; a waiter blocks on that list with BLPOP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Script:
    name: str
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


_WAKE = """
local function wake(prefix, waiter, ttl)
  local key = prefix .. waiter
  redis.call('RPUSH', key, '1')
  redis.call('EXPIRE', key, ttl)
end
"""

#: KEYS: the token's set of held ends. ARGV: ttl, token, end... (no ends: all of them).
#: An end is ``<prefix>:a`` or ``<prefix>:b``; when its last holder lets go, the
#: peer's inbox ``<peer>:in`` gets an empty item: end of file.
RELEASE_ENDS = Script("release_ends", """
local ends = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ends[#ends + 1] = ARGV[i] end
else
  ends = redis.call('SMEMBERS', KEYS[1])
end
for _, e in ipairs(ends) do
  redis.call('SREM', KEYS[1], e)
  if redis.call('SREM', e .. ':h', ARGV[2]) == 1 and redis.call('SCARD', e .. ':h') == 0 then
    local last = string.sub(e, -1)
    local peer = string.sub(e, 1, -2) .. (last == 'a' and 'b' or 'a')
    redis.call('RPUSH', peer .. ':in', '')
    redis.call('EXPIRE', peer .. ':in', ARGV[1])
    redis.call('DEL', e .. ':in')
  end
end
return #ends
""")

#: KEYS: the token's set of held ends. ARGV: ttl, token, end...
HOLD_ENDS = Script("hold_ends", """
for i = 3, #ARGV do
  redis.call('SADD', ARGV[i] .. ':h', ARGV[2])
  redis.call('EXPIRE', ARGV[i] .. ':h', ARGV[1])
  redis.call('SADD', KEYS[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
""")

#: KEYS: value, waiters list. ARGV: ttl, waiter id ('' to not wait).
#: 1 if a unit was taken; else 0, and the waiter (if any) is queued.
SEM_ACQUIRE = Script("sem_acquire", """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
  return 1
end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 0
""")

#: KEYS: value, waiters list. ARGV: ttl, maximum value, wake prefix.
#: Hands the unit to the first waiter, else adds it to the value (error above the maximum).
SEM_RELEASE = Script("sem_release", _WAKE + """
local w = redis.call('LPOP', KEYS[2])
if w then
  wake(ARGV[3], w, ARGV[1])
  return 1
end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[2]) then
  return redis.error_reply('RELEASED_TOO_MANY')
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
""")

#: KEYS: waiters list, count of wake-ups not yet taken. ARGV: ttl, how many to wake
#: (-1: all), wake prefix.
NOTIFY = Script("notify", _WAKE + """
local n = tonumber(ARGV[2])
local woken = 0
while n < 0 or woken < n do
  local w = redis.call('LPOP', KEYS[1])
  if not w then break end
  wake(ARGV[3], w, ARGV[1])
  woken = woken + 1
end
if woken > 0 then
  redis.call('INCRBY', KEYS[2], woken)
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return woken
""")

#: KEYS: waiters list, the waiter's wake list. ARGV: waiter id.
#: 1 if a wake-up was already given to this waiter (consumed here), else 0.
CANCEL_WAIT = Script("cancel_wait", """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then return 0 end
if redis.call('LPOP', KEYS[2]) then return 1 end
return 0
""")

#: KEYS: flag, waiters list. ARGV: ttl, wake prefix. Set the flag and wake everyone.
EVENT_SET = Script("event_set", _WAKE + """
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
for _, w in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do wake(ARGV[2], w, ARGV[1]) end
redis.call('DEL', KEYS[2])
return 1
""")

#: KEYS: flag, waiters list. ARGV: ttl, waiter id. 1 if set, else queue the waiter.
EVENT_WAIT = Script("event_wait", """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 0
""")

#: KEYS: items, waiting putters, unfinished (joinable) or ''. ARGV: ttl, item, maxsize,
#: 1 if this putter was counted as waiting, 1 if it will wait when the queue is full.
#: 1 if put; else 0 (and the putter is counted as waiting if it will wait).
BOUNDED_PUT = Script("bounded_put", """
if ARGV[4] == '1' then redis.call('DECR', KEYS[2]) end
if redis.call('LLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  if KEYS[3] ~= '' then
    redis.call('INCR', KEYS[3])
    redis.call('EXPIRE', KEYS[3], ARGV[1])
  end
  return 1
end
if ARGV[5] == '1' then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 0
""")

#: KEYS: waiting putters, putters' wake list. ARGV: ttl. After a get: wake one putter.
MADE_ROOM = Script("made_room", """
local waiting = tonumber(redis.call('GET', KEYS[1]) or '0')
if waiting > 0 then
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return waiting
""")

#: KEYS: unfinished count, waiters list. ARGV: ttl, wake prefix.
TASK_DONE = Script("task_done", _WAKE + """
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return redis.error_reply('TASK_DONE_TOO_MANY') end
left = redis.call('DECR', KEYS[1])
if left == 0 then
  for _, w in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do wake(ARGV[2], w, ARGV[1]) end
  redis.call('DEL', KEYS[2])
end
return left
""")

#: KEYS: unfinished count, waiters list. ARGV: ttl, waiter id. 1 if nothing unfinished.
JOIN_WAIT = Script("join_wait", """
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return 1 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 0
""")

#: KEYS: tasks, the worker's in-flight list. ARGV: ttl, pool size, most to take.
#: Moves up to a fair share of the waiting tasks (at least one) to in-flight.
PULL = Script("pull", """
local waiting = redis.call('LLEN', KEYS[1])
if waiting == 0 then return {} end
local n = math.max(1, math.min(tonumber(ARGV[3]), math.floor(waiting / tonumber(ARGV[2]))))
local items = redis.call('LPOP', KEYS[1], n)
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('EXPIRE', KEYS[2], ARGV[1])
return items
""")

#: KEYS: results, the worker's in-flight list. ARGV: ttl, result, the task it answers.
#: The result is published and the task leaves in-flight in one step: exactly once.
COMPLETE = Script("complete", """
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('LREM', KEYS[2], 1, ARGV[3])
return 1
""")

#: KEYS: a gone worker's in-flight list, tasks. ARGV: ttl. Its tasks go back in front.
REQUEUE = Script("requeue", """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items == 0 then return 0 end
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return #items
""")

ALL = (PULL, COMPLETE, REQUEUE, RELEASE_ENDS, HOLD_ENDS, SEM_ACQUIRE, SEM_RELEASE,
       NOTIFY, CANCEL_WAIT, EVENT_SET, EVENT_WAIT, BOUNDED_PUT, MADE_ROOM, TASK_DONE, JOIN_WAIT)
