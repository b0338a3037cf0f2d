"""Users' own models: an .onnx file, a PyTorch entry point + safetensors weights, or a torch.export .pt2.

    model = load_user_model("net.onnx")                       # or "pkg.mod:build" / "file.py:build", or "net.pt2"
    model.info            -> ModelInfo(format, input_shape, num_classes, layout, ...)
    model.export_onnx(p)  -> an ONNX file for any of them
    model.torch_module()  -> an nn.Module (ONNX graphs through edgemap.models.onnx_to_torch)
    model.session()       -> a runtime Session (onnxruntime for ONNX, torch otherwise)
"""

from edgemap.models.sources.model import ModelInfo, UserModel, is_user_model, load_user_model, load_user_model_ref

__all__ = ["ModelInfo", "UserModel", "is_user_model", "load_user_model", "load_user_model_ref"]
