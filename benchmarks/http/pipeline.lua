-- wrk script: 16 pipelined GET / per round trip (benchmarks/http.py --pipeline).
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format("GET", "/") end
  req = table.concat(r)
end
request = function() return req end
