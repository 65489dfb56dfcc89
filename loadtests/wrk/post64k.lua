-- POST a 64 KiB body with every request; the apps answer the body's length (65536).
wrk.method = "POST"
wrk.body = string.rep("x", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
