-- wrk script of scripts/bench: one fixed POST /v1/chat/completions (or a GET, see BENCH_GET), and a JSON line of results
-- at the end.
-- Arguments (after --): KEY MODEL STREAM [KEYS_FILE]
--   KEY        the sk- key sent as Authorization: Bearer, or "-" for none (calls straight to the upstream)
--   MODEL      the model name
--   STREAM     1 for a streamed call ("stream": true), 0 for a whole answer
--   KEYS_FILE  optional file of keys, one a line: each call takes the next key (key-lookup runs)
local keys = {}
local index = 0

function init(args)
   local key, model, stream, keysfile = args[1], args[2], args[3], args[4]
   -- BENCH_GET=/path: a plain GET of that path instead (the server floor: /healthz).
   local get = os.getenv("BENCH_GET")
   if get and get ~= "" then
      wrk.method = "GET"
      wrk.path = get
      return
   end
   wrk.method = "POST"
   wrk.path = "/v1/chat/completions"
   wrk.headers["Content-Type"] = "application/json"
   if key and key ~= "-" then wrk.headers["Authorization"] = "Bearer " .. key end
   local streamed = ""
   if stream == "1" then streamed = ', "stream": true' end
   wrk.body = '{"model": "' .. model .. '", "messages": [{"role": "system", "content": "You are a helpful assistant."}, '
      .. '{"role": "user", "content": "Say hello in one short sentence."}], "max_tokens": 64, "temperature": 0.2' .. streamed .. '}'
   if keysfile and keysfile ~= "" then
      for line in io.lines(keysfile) do
         if line ~= "" then keys[#keys + 1] = line end
      end
      -- Each thread starts at a different place in the list.
      index = math.random(#keys)
   end
end

if os.getenv("BENCH_ROTATE_KEYS") == "1" then
   function request()
      index = index % #keys + 1
      wrk.headers["Authorization"] = "Bearer " .. keys[index]
      return wrk.format()
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
