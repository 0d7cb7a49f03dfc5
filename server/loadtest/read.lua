-- wrk script: GET /$TYPE/{id}, cycling through the ids listed in $IDS.
local ids = {}
for line in io.lines(os.getenv("IDS")) do
  ids[#ids + 1] = line
end
local typ = os.getenv("TYPE")
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/" .. typ .. "/" .. ids[(i % #ids) + 1])
end
