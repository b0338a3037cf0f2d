"""The INT8 a user would otherwise make, with each tool's own defaults, for edgemap to be measured against.

build.py makes the peer models (ONNX Runtime static INT8 with Olive's defaults, NNCF INT8 on ONNX
Runtime, NNCF INT8 on OpenVINO); compare.py scores them and edgemap's candidates on the same images
and times them all the same way (runtime/isolated.py: one fresh process per sample).
"""
