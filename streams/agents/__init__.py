"""One agent per module, each named after the topic it consumes; `register(pipeline)` adds it to the app."""
