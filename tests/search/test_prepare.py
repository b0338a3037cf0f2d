"""What a search prepares before its first trial: the calibration hold-out and the fine-tuning rate."""

import numpy as np
from torch import nn

from edgemap.data.dataset import ImageSet
from edgemap.search.prepare import FINETUNE_LR, FINETUNE_LR_NO_BN, SAMPLE_CALIBRATION, finetune_lr, split_data


def test_holdout_of_a_class_sorted_folder_holds_every_class():
    """An image folder lists its images class by class: calibration and evaluation must both see every class."""
    labels = np.repeat(np.arange(5), 200)
    images = np.zeros((len(labels), 8, 8, 3), np.uint8)
    data = split_data(ImageSet(images, labels, tuple("abcde"), "folder"), None)
    assert len(data.calib_set) == SAMPLE_CALIBRATION and len(data.eval_set) == len(labels) - SAMPLE_CALIBRATION
    assert set(data.calib_set.labels) == set(range(5)) and set(data.eval_set.labels) == set(range(5))
    again = split_data(ImageSet(images, labels, tuple("abcde"), "folder"), None)
    assert (again.calib_set.labels == data.calib_set.labels).all()  # fixed seed: `edgemap run` replays it


def test_finetune_rate_is_lower_without_batchnorm():
    with_bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    folded = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert finetune_lr(with_bn) == FINETUNE_LR and finetune_lr(folded) == FINETUNE_LR_NO_BN < FINETUNE_LR
