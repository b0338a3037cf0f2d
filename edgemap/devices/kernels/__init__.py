"""Kernel-level latency prediction for ONNX Runtime on CPUs (after nn-Meter, MobiSys 2021, and LitePred, NSDI 2024).

ortgraph/shapes: the optimised graph ONNX Runtime runs, with shapes; profiling: per-kernel times from
its profiler; features: kernel type key + feature vector; sampler: tiny FP32/INT8 graphs; campaign:
the adaptive sampling run by `edgemap devices calibrate-host`; store: records beside a profile, per
instruction set; predictor: per-type regressors + whole-call constants; predict: a model's latency
on this host; device: on a named device (own records, or host kernels scaled by its profile).
"""
