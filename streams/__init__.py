"""The Faust app: topics, agents (one per concern, in streams/agents/) and the worker's runtime."""
