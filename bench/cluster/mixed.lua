-- wrk script of bench/cluster/run.sh: a mixed AtomSpace load. Of every WRITE_EVERY requests
-- (environment, default 5; 0: reads only), one writes a new ConceptNode (POST /atoms, a name no
-- other thread or run uses) and the others read (GET /atoms?type=ConceptNode&name=seed-N, one of
-- the SEEDS atoms the run adds first). wrk itself counts the answers that are not 2xx/3xx
-- ("Non-2xx or 3xx responses").
local SEEDS = 1000
local WRITE_EVERY = tonumber(os.getenv("WRITE_EVERY") or "5")
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  run = args[1] or tostring(os.time())
end

function request()
  n = n + 1
  if WRITE_EVERY > 0 and n % WRITE_EVERY == 0 then
    local body = string.format('{"type":"ConceptNode","name":"w-%s-%d-%d"}', run, tid, n)
    return wrk.format("POST", "/atoms", { ["content-type"] = "application/json" }, body)
  end
  return wrk.format("GET", string.format("/atoms?type=ConceptNode&name=seed-%d", (n * 7 + tid) % SEEDS))
end
