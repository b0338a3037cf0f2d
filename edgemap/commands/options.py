"""Command-line options that several commands take, declared once (help text and default in one place)."""

from __future__ import annotations

import typer

MODEL_HELP = ("checkpoint (.safetensors), .onnx or .pt2 file (torch.export), or an entry point 'pkg.module:build_fn' / "
              "'file.py:build_fn' with --weights")

WEIGHTS_OPTION = typer.Option(None, help="safetensors weights of an entry-point model")
PREPROCESS_OPTION = typer.Option(None, help="how images become the model's inputs, for user models: "
                                             "'cifar10', 'imagenet,resize=224x224,channels=bgr' or a .yaml file")
INPUT_SHAPE_OPTION = typer.Option(None, help="user models: per-sample input shape, e.g. 3,224,224")
CLASSES_OPTION = typer.Option(None, help="the model's output order, e.g. cat,dog,bird (labelled data is relabelled to "
                                          "it by name; data with other class names is refused)")
LABELS_OPTION = typer.Option(None, help="file with one class name per line, in the model's output order (or --classes)")
