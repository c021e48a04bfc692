-- wrk: reports' details read with an agent's token (never from the response cache: Django
-- and the database answer each one), ids at random among the first LAST_REPORT_ID.
--
--   wrk -s detail.lua URL -- TOKEN LAST_REPORT_ID

function init(args)
    token = args[1]
    last_id = tonumber(args[2])
end

function request()
    return wrk.format("GET", "/api/signalements/" .. math.random(1, last_id) .. "/",
        {["Authorization"] = "Token " .. token})
end
