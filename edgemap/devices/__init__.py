"""Device profiles and cost estimates.

    from edgemap.devices.catalogue import resolve        # name or path -> DeviceProfile
    from edgemap.devices.estimate import estimate         # (onnx path, profile) -> Estimate
    from edgemap.devices.graph import analyse             # onnx path -> GraphCost (reusable across devices)
    from edgemap.devices.estimate import estimate_cost    # (GraphCost, profile) -> Estimate
"""
