-- One-click POSTs, each with the next reader's token; threads take turns through the list.
local tokens = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines("tokens.txt") do tokens[#tokens + 1] = line end
  i = id
end
request = function()
  i = i + 2
  local t = tokens[(i % #tokens) + 1]
  return wrk.format("POST", "/u?token=" .. t,
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, "List-Unsubscribe=One-Click")
end
