-- wrk script: POST the resource in $BODY to /$TYPE.
local f = assert(io.open(os.getenv("BODY"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.path = "/" .. os.getenv("TYPE")
wrk.headers["Content-Type"] = "application/fhir+json"
