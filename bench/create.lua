-- wrk script for the create scenario of `make bench`: the same anonymous report
-- POSTed as JSON to both servers (the contract's minimal create).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"description": "Panne électrique", "date": "2025-04-29T16:30:00+02:00"}'
