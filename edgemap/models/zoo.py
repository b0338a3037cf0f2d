"""Model registry: names -> builders, with the facts a user needs to choose (parameters, MACs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from edgemap.errors import EdgemapError
from edgemap.models import architectures as arch


@dataclass(frozen=True)
class ZooEntry:
    """One registered architecture: how to build it and what it is."""

    name: str
    build: Callable[..., nn.Module]
    description: str
    input_shape: tuple[int, int, int] = (3, 32, 32)
    test_only: bool = False


_REGISTRY: dict[str, ZooEntry] = {}


def register(name: str, description: str, test_only: bool = False) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a builder under `name`; tiny test models register like real ones."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ZooEntry(name, fn, description, test_only=test_only)
        return fn

    return wrap


@register("resnet9s", "ResNet-9 (DAWNBench layout) at width 16: the shipped default")
def resnet9s(num_classes: int = 10) -> nn.Module:
    return arch.ResNet9(num_classes, width=16)


@register("writeup_cnn", "the write-up's two-conv CNN, with the two 2x2 poolings that make it run")
def writeup_cnn(num_classes: int = 10) -> nn.Module:
    return arch.WriteupCNN(num_classes)


@register("mobilenetv2", "MobileNetV2-style, width 0.5, adapted to 32x32")
def mobilenetv2(num_classes: int = 10) -> nn.Module:
    return arch.MobileNetV2Cifar(num_classes, width_mult=0.5)


@register("tiny", "tiny conv net for tests (~3 k parameters)", test_only=True)
def tiny(num_classes: int = 10) -> nn.Module:
    return arch.TinyNet(num_classes)


def names(include_test: bool = True) -> list[str]:
    """Registered model names, in registration order."""
    return [n for n, e in _REGISTRY.items() if include_test or not e.test_only]


def entry(name: str) -> ZooEntry:
    """The registry entry for `name`, or a one-line error listing what exists."""
    if name not in _REGISTRY:
        raise EdgemapError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build(name: str, num_classes: int = 10) -> nn.Module:
    """A freshly initialised model of the named architecture."""
    return entry(name).build(num_classes=num_classes)
