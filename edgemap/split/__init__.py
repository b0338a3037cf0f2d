"""Edge-cloud split execution: run the first layers on the device and the rest on a server.

graph (single-tensor cuts, head/tail extraction) -> profile (latency, bytes, accuracy per cut and
encoding) -> planner (every option, predicted latency/energy, the best) -> bundle (edge and server
halves) -> server (tail behind HTTP) / client (head, deadlines, fallback) -> adaptive (re-plan from
measured bandwidth and RTT); shaping emulates a link on loopback. The edge side (client, adaptive,
codec, planner, bundle reading) needs numpy + onnxruntime (+ zstandard, pillow) only.
"""
