"""The HTTPS gateway (`dualtrack gateway`): schools send their events over HTTP with a token, and get
an answer per line and a view of their own (docs/gateway.md).

- `gateway.judge`: a body's lines judged by the stream's validator and duplicate rule, before sending;
- `gateway.limits`: each school's rate (a token bucket) and the events sent lately;
- `gateway.app`: the aiohttp application: tokens, limits, Kafka (as user `gateway`) and the store;
- `gateway.view`: `GET /v1/school`; `gateway.openapi`: `GET /v1/openapi.json`.
"""
