-- wrk's mixed load through nginx (tests/cluster/test_failover.py): of every ten requests,
-- two creates by an agent (token), four reads of the list's first three pages and four
-- reports' details,
-- anonymous. Each thread writes the id of every 201 it got, and the status of every
-- answer that was not a success, into a file of its own, for the test to check.
--
--   wrk -s mixed.lua URL -- TOKEN OUTPUT_DIRECTORY LAST_REPORT_ID

local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("number", threads)
end

function init(args)
    token = args[1]
    output = io.open(args[2] .. "/wrk-" .. number .. ".txt", "w")
    last_id = tonumber(args[3])
    sent = 0
    math.randomseed(number * 7919)
end

function request()
    sent = sent + 1
    local kind = sent % 10
    if kind < 2 then
        local body = string.format(
            '{"description": "wrk %d-%d", "date": "2025-04-29T16:30:00+02:00"}', number, sent)
        return wrk.format("POST", "/api/signalements/",
            {["Content-Type"] = "application/json", ["Authorization"] = "Token " .. token}, body)
    elseif kind < 6 then
        return wrk.format("GET", "/api/signalements/?page=" .. (kind % 3 + 1))
    end
    return wrk.format("GET", "/api/signalements/" .. math.random(1, last_id) .. "/")
end

function response(status, headers, body)
    if status == 201 then
        output:write("created ", body:match('"id":(%d+)'), "\n")
    elseif status >= 300 then
        output:write("failed ", status, "\n")
    end
    output:flush()
end
