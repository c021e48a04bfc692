-- wrk: reports created by an agent (token), as a citizens' app posts them.
--
--   wrk -s create.lua URL -- TOKEN

function init(args)
    token = args[1]
end

function request()
    return wrk.format("POST", "/api/signalements/",
        {["Content-Type"] = "application/json", ["Authorization"] = "Token " .. token},
        '{"description": "Lampadaire éteint", "date": "2025-04-29T16:30:00+02:00", ' ..
        '"latitude": 48.1147, "longitude": -1.6801}')
end
