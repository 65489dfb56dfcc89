-- 16 requests pipelined per connection: all 16 are written at once, then wrk waits for
-- the 16 responses (it counts each one) before it writes the next 16.
local depth = 16

init = function(args)
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format()
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end
