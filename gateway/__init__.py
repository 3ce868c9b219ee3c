"""`videoedit-web`: the HTTP API (the original worker's REST routes, uploads, live progress, downloads) and a
web page, in front of the orchestrator's gRPC API. It holds no job state of its own."""
