"""The gRPC edge: VideoEditService (servicer: protobuf <-> Python), server wiring, auth/TLS,
and streamed file transfers."""
