-- wrk script: POST the JSON body in the BODY environment variable (or a short review) to the URL path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY") or '{"text": "This movie was really great and I loved the acting a lot, would watch again"}'
