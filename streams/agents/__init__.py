"""One agent per concern, each named after what it consumes."""
